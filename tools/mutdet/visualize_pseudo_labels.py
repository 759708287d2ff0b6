"""Pictures of MutDet pseudo-labels made by tools/mutdet/make_pseudo_labels.py.

    python tools/mutdet/visualize_pseudo_labels.py --images DIR --out DIR [--num-images 4] \
        [--tsne-points 2000] [--save-dir DIR]

Writes ``<image>_pseudo_labels.png`` (boxes coloured by cluster id) for the first
``--num-images`` labelled images and ``tsne.png`` (a t-SNE of up to ``--tsne-points``
embeddings coloured by cluster) to ``--save-dir`` (default OUT/pictures).
"""
import argparse
import glob
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))))

import cv2  # noqa: E402

from ifkd_mm.pretraining.mutdet.pseudo_labels import read_rgb  # noqa: E402
from ifkd_mm.pretraining.mutdet.storage import read_fields  # noqa: E402
from ifkd_mm.pretraining.mutdet.visualize import (draw_pseudo_labels,  # noqa: E402
                                                  sample_embeddings, tsne_picture)


def main(argv=None) -> list:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--images', required=True, help='the folder the labels were made from')
    parser.add_argument('--out', required=True, help="make_pseudo_labels.py's output folder")
    parser.add_argument('--num-images', type=int, default=4)
    parser.add_argument('--tsne-points', type=int, default=2000)
    parser.add_argument('--num-clusters', type=int, default=256)
    parser.add_argument('--save-dir', help='default: OUT/pictures')
    args = parser.parse_args(argv)
    files = sorted(glob.glob(osp.join(args.out, 'labels', '*.npz')))
    if not files:
        raise SystemExit(f'no pseudo-label files in {osp.join(args.out, "labels")}: run '
                         'tools/mutdet/make_pseudo_labels.py first')
    save_dir = args.save_dir or osp.join(args.out, 'pictures')
    os.makedirs(save_dir, exist_ok=True)
    written = []
    for path in files[:args.num_images]:
        fields = read_fields(path, ('boxes', 'labels', 'image_name'))
        image = read_rgb(osp.join(args.images, str(fields['image_name'])))
        picture = draw_pseudo_labels(image, fields['boxes'], fields['labels'], args.num_clusters)
        target = osp.join(save_dir, osp.splitext(osp.basename(path))[0] + '_pseudo_labels.png')
        cv2.imwrite(target, cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
        written.append(target)
    embeddings, labels = sample_embeddings(files, args.tsne_points)
    target = osp.join(save_dir, 'tsne.png')
    tsne_picture(embeddings, labels, target, args.num_clusters)
    written.append(target)
    print('\n'.join(written))
    return written


if __name__ == '__main__':
    main()
