"""Class lists of every dataset layout: the real lists, and the subsets the synthetic data uses."""
from __future__ import annotations

from typing import Dict, Tuple

#: Real ShipRSImageNet level lists (official order), for reference.
SHIPRS_REAL_LEVEL_CLASSES: Dict[int, Tuple[str, ...]] = {
    0: ('Ship', 'Dock'),
    1: ('Other Ship', 'Warship', 'Merchant', 'Dock'),
    2: ('Other Ship', 'Other Warship', 'Submarine', 'Aircraft Carrier', 'Cruiser', 'Destroyer',
        'Frigate', 'Patrol', 'Landing', 'Commander', 'Auxiliary Ships', 'Other Merchant',
        'Container Ship', 'RoRo', 'Cargo', 'Barge', 'Tugboat', 'Ferry', 'Yacht', 'Sailboat',
        'Fishing Vessel', 'Oil Tanker', 'Hovercraft', 'Motorboat', 'Dock'),
    3: ('Other Ship', 'Other Warship', 'Submarine', 'Other Aircraft Carrier', 'Enterprise',
        'Nimitz', 'Midway', 'Ticonderoga', 'Other Destroyer', 'Atago DD', 'Arleigh Burke DD',
        'Hatsuyuki DD', 'Hyuga DD', 'Asagiri DD', 'Other Frigate', 'Perry FF', 'Patrol',
        'Other Landing', 'YuTing LL', 'YuDeng LL', 'YuDao LL', 'YuZhao LL', 'Austin LL',
        'Osumi LL', 'Wasp LL', 'LSD 41 LL', 'LHA LL', 'Commander', 'Other Auxiliary Ship',
        'Medical Ship', 'Test Ship', 'Training Ship', 'AOE', 'Masyuu AS', 'Sanantonio AS', 'EPF',
        'Other Merchant', 'Container Ship', 'RoRo', 'Cargo', 'Barge', 'Tugboat', 'Ferry', 'Yacht',
        'Sailboat', 'Fishing Vessel', 'Oil Tanker', 'Hovercraft', 'Motorboat', 'Dock'),
}
#: level-3 class -> (level 0, level 1, level 2) names, as in the real hierarchy.
SHIPRS_HIERARCHY: Dict[str, Tuple[str, str, str]] = {
    'Arleigh Burke DD': ('Ship', 'Warship', 'Destroyer'),
    'Container Ship': ('Ship', 'Merchant', 'Container Ship'),
    'Tugboat': ('Ship', 'Merchant', 'Tugboat'),
    'Dock': ('Dock', 'Dock', 'Dock'),
}
#: The synthetic class list of every level (used classes only, in the real lists' order);
#: category id = 1 + index.
SHIPRS_LEVEL_CLASSES: Dict[int, Tuple[str, ...]] = {
    level: tuple(name for name in SHIPRS_REAL_LEVEL_CLASSES[level]
                 if any((*chain, leaf)[level] == name
                        for leaf, chain in SHIPRS_HIERARCHY.items()))
    for level in range(4)
}
SHIPRS_CLASSES = SHIPRS_LEVEL_CLASSES[3]

SAR_AIRCRAFT_CLASSES = ('A220', 'A320/321', 'A330', 'ARJ21', 'Boeing737', 'Boeing787', 'other')
SAR_AIRCRAFT_USED_CLASSES = ('A220', 'A330', 'ARJ21', 'Boeing787')

DOTA_CLASSES = ('plane', 'baseball-diamond', 'bridge', 'ground-track-field', 'small-vehicle',
                'large-vehicle', 'ship', 'tennis-court', 'basketball-court', 'storage-tank',
                'soccer-ball-field', 'roundabout', 'harbor', 'swimming-pool', 'helicopter')
DOTA_USED_CLASSES = ('plane', 'large-vehicle', 'ship', 'harbor')

DIOR_CLASSES = ('airplane', 'airport', 'baseballfield', 'basketballcourt', 'bridge', 'chimney',
                'expressway-service-area', 'expressway-toll-station', 'dam', 'golffield',
                'groundtrackfield', 'harbor', 'overpass', 'ship', 'stadium', 'storagetank',
                'tenniscourt', 'trainstation', 'vehicle', 'windmill')
DIOR_USED_CLASSES = ('airplane', 'ship', 'storagetank', 'vehicle')

#: HRSC2016 classes written (name as in mmrotate's HRSCDataset -> HRSC Class_ID). All of them are
#: in mmrotate's classwise list; with ``classwise=False`` every object is 'ship'.
HRSC_USED_CLASSES: Dict[str, str] = {
    'aircraft carrier': '100000002',
    'warcraft': '100000003',
    'merchant ship': '100000004',
    'submarine': '100000027',
}

NWPU45_CLASSES = ('airplane', 'airport', 'baseball_diamond', 'beach', 'bridge')
AID_CLASSES = ('Airport', 'BareLand', 'BaseballField', 'Beach', 'Bridge')
AFGR50_CLASSES = ('A220', 'A330', 'B737', 'B747', 'C130')
