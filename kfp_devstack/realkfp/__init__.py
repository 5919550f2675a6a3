"""The real Kubeflow Pipelines backend (API server and persistence agent) in the local stack.

``kfp-devstack up --kfp real`` and the ``real_kfp`` test fixture run KFP 2.17.0's own
API server, built from source by ``hack/build-kfp-backend.sh``, on MariaDB and moto's
S3 server, against the local control plane. The emulator stands in front of it and
drives its Workflows (docs/emulator.md §15).
"""

from kfp_devstack.realkfp.backend import RealKfpBackend, prepare_cluster
from kfp_devstack.realkfp.kfp_server import KfpBinaries, locate_kfp_binaries

__all__ = ["KfpBinaries", "RealKfpBackend", "locate_kfp_binaries", "prepare_cluster"]
