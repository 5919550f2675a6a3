"""Build step: compile ML Metadata's minimal proto into the descriptor set the MLMD client loads.

Everything else about the package is declared in pyproject.toml. The descriptor set is generated,
not committed: grpcio-tools (a build requirement only) compiles
``kfp_operator/clients/mlmd/metadata_store.proto`` with its imports into
``metadata_store.binpb``, into the wheel, or beside the proto for an editable install.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PROTO_DIR = Path("kfp_operator") / "clients" / "mlmd"
PROTO = "metadata_store.proto"
DESCRIPTOR_SET = "metadata_store.binpb"


def compile_descriptor_set(target_dir: Path) -> None:
    from grpc_tools import protoc

    target_dir.mkdir(parents=True, exist_ok=True)
    well_known = resources.files("grpc_tools") / "_proto"
    status = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{PROTO_DIR}",
            f"-I{well_known}",
            "--include_imports",
            f"--descriptor_set_out={target_dir / DESCRIPTOR_SET}",
            str(PROTO_DIR / PROTO),
        ]
    )
    if status != 0:
        raise RuntimeError(f"protoc failed to compile {PROTO_DIR / PROTO} (exit status {status})")


class BuildPyWithDescriptors(build_py):
    def run(self) -> None:
        super().run()
        # An editable install imports the package from the source tree, so the file goes there.
        target = PROTO_DIR if self.editable_mode else Path(self.build_lib) / PROTO_DIR
        compile_descriptor_set(target)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = list(super().get_outputs(include_bytecode))
        if not self.editable_mode:
            outputs.append(str(Path(self.build_lib) / PROTO_DIR / DESCRIPTOR_SET))
        return outputs


setup(cmdclass={"build_py": BuildPyWithDescriptors})
