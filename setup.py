"""Install ifkd_mm. The pinned stack (torch, mmcv built with ops, ...) comes from tools/setup_env.sh."""
from pathlib import Path

from setuptools import find_packages, setup


def read_requirements(name: str) -> list:
    lines = (Path(__file__).parent / 'requirements' / name).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith(('#', '-r'))]


setup(
    name='ifkd_mm',
    version='0.1.0',
    description='Knowledge distillation for remote-sensing detection and classification '
                '(IFKD, KD-RNet, DKED, MutDet, ERKT-Net) as an OpenMMLab plugin',
    packages=find_packages(include=['ifkd_mm', 'ifkd_mm.*']),
    python_requires='>=3.9',
    install_requires=['mmcv>=2.0.0,<2.2.0'] + read_requirements('runtime.txt'),
    extras_require={'tests': read_requirements('tests.txt')},
    license='Apache-2.0',
)
