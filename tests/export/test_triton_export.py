"""`edgetk export-triton`: a model repository whose config Triton itself accepts."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np
import onnx
import pytest

from toolkit.errors import BadInputError
from toolkit.export.triton import TritonOptions, write_repository
from toolkit.model.spec import ModelSpec

HAS_CLIENT = importlib.util.find_spec("tritonclient") is not None
needs_client = pytest.mark.skipif(
    not HAS_CLIENT, reason='tritonclient is not installed ("[serve]")'
)


def _parse(config: Path):
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    return text_format.Parse(config.read_text(), model_config_pb2.ModelConfig())


@needs_client
def test_config_is_derived_from_the_file(tiny_onnx: Path, tmp_path: Path):
    repo = write_repository(tiny_onnx, tmp_path / "repo", TritonOptions(max_batch=16))
    cfg = _parse(repo.config)  # Triton's own ModelConfig schema: unknown fields fail
    assert cfg.name == "tiny" and cfg.platform == "onnxruntime_onnx"
    assert cfg.max_batch_size == 16
    assert [(i.name, list(i.dims)) for i in cfg.input] == [("images", [3, 32, 32])]
    assert [(o.name, list(o.dims)) for o in cfg.output] == [("logits", [3])]
    assert list(cfg.dynamic_batching.preferred_batch_size) == [2, 4, 8, 16]
    assert cfg.instance_group[0].kind == cfg.instance_group[0].KIND_CPU
    spec = ModelSpec.from_json(cfg.parameters["edgetk"].string_value)
    assert spec.labels == ("ok", "scratch", "spot")
    assert (repo.model_dir / "1" / "model.onnx").read_bytes() == tiny_onnx.read_bytes()


@needs_client
def test_a_fixed_batch_is_not_batched_by_triton(tiny_onnx: Path, tmp_path: Path):
    proto = onnx.load(str(tiny_onnx))
    for v in (*proto.graph.input, *proto.graph.output):
        v.type.tensor_type.shape.dim[0].dim_value = 2
    fixed = tmp_path / "fixed.onnx"
    onnx.save(proto, str(fixed))
    cfg = _parse(write_repository(fixed, tmp_path / "repo").config)
    assert cfg.max_batch_size == 0 and not cfg.HasField("dynamic_batching")
    assert list(cfg.input[0].dims) == [2, 3, 32, 32]


@pytest.mark.parametrize(
    ("options", "match"),
    [
        (TritonOptions(max_batch=0), "--max-batch"),
        (TritonOptions(preferred=(3, 99)), "preferred batch sizes"),
        (TritonOptions(kind="tpu"), "--kind"),
        (TritonOptions(name="a/b"), "model name"),
    ],
)
def test_bad_options(tiny_onnx: Path, tmp_path: Path, options: TritonOptions, match: str):
    with pytest.raises(BadInputError, match=match):
        write_repository(tiny_onnx, tmp_path / "repo", options)


def test_an_existing_model_folder_needs_force(tiny_onnx: Path, tmp_path: Path):
    write_repository(tiny_onnx, tmp_path / "repo")
    with pytest.raises(BadInputError, match="--force"):
        write_repository(tiny_onnx, tmp_path / "repo")
    write_repository(tiny_onnx, tmp_path / "repo", force=True)
    assert sorted(p.name for p in (tmp_path / "repo").iterdir()) == ["tiny"]


def test_cli_json(tiny_onnx: Path, tmp_path: Path):
    import typer
    from typer.testing import CliRunner

    from toolkit.cli.cmd_export_triton import command

    app = typer.Typer()
    app.command()(command)
    res = CliRunner().invoke(app, [str(tiny_onnx), "-o", str(tmp_path / "r"), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["platform"] == "onnxruntime_onnx"


# -- a real Triton server loads the repository ------------------------------------------------
# PyTriton's tritonserver ships only the Python backend. Triton runs a "Python-based backend"
# (backends/<name>/model.py) for a backend whose library is absent, so a stand-in named
# onnxruntime (ONNX Runtime in Python) lets the real server parse and validate the exported
# config (auto-complete off), map its platform to the backend, load the model and serve it.
_STAND_IN = """
import json, os
import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils

class TritonPythonModel:
    def initialize(self, args):
        cfg = json.loads(args["model_config"])
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        self.outputs = [o["name"] for o in cfg["output"]]

    def execute(self, requests):
        responses = []
        for r in requests:
            feeds = {i.name: np.from_dlpack(pb_utils.get_input_tensor_by_name(r, i.name))
                     for i in self.session.get_inputs()}
            ys = self.session.run(self.outputs, feeds)
            responses.append(pb_utils.InferenceResponse(
                [pb_utils.Tensor.from_dlpack(n, y) for n, y in zip(self.outputs, ys)]))
        return responses
"""


def _tritonserver() -> Path | None:
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations))) / "tritonserver"
    return root if (root / "bin" / "tritonserver").exists() else None


@pytest.mark.slow
def test_a_real_triton_server_loads_the_repository(tiny_onnx: Path, tmp_path: Path):
    root = _tritonserver()
    if root is None or not HAS_CLIENT:
        pytest.skip("needs nvidia-pytriton's tritonserver and tritonclient")
    sys.path.insert(0, str(Path(__file__).parents[1] / "serve"))
    import tritonclient.grpc as grpcclient
    from _triton_helpers import free_ports

    write_repository(tiny_onnx, tmp_path / "repo")
    backends = tmp_path / "backends"
    shutil.copytree(root / "backends" / "python", backends / "python")
    stub = root / "python_backend_stubs" / f"{sys.version_info[0]}.{sys.version_info[1]}"
    shutil.copy(stub / "triton_python_backend_stub", backends / "python")
    (backends / "onnxruntime").mkdir()
    (backends / "onnxruntime" / "model.py").write_text(_STAND_IN)
    libs = root.parent.parent / "nvidia_pytriton.libs"
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")
    env["LD_LIBRARY_PATH"] = f"{sysconfig.get_config_var('LIBDIR')}:{libs}"
    grpc, http, metrics = free_ports(3)
    cmd = [str(root / "bin" / "tritonserver"), f"--model-repository={tmp_path / 'repo'}",
           f"--backend-directory={backends}", "--disable-auto-complete-config",
           "--exit-on-error=true", f"--grpc-port={grpc}", f"--http-port={http}",
           f"--metrics-port={metrics}", "--grpc-address=127.0.0.1", "--http-address=127.0.0.1",
           "--metrics-address=127.0.0.1"]  # fmt: skip
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc}")
        for _ in range(120):
            if proc.poll() is not None:
                pytest.fail("tritonserver exited: " + (tmp_path / "server.log").read_text()[-600:])
            try:
                if client.is_model_ready("tiny"):
                    break
            except Exception:
                pass
            time.sleep(0.25)
        else:
            pytest.skip("tritonserver did not come up in 30 s here")
        from toolkit.backends import open_session

        x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
        with (
            open_session(tiny_onnx, "ort-cpu") as ref,
            open_session("-", f"triton://127.0.0.1:{grpc}/tiny") as s,
        ):
            assert s.spec == ref.spec
            np.testing.assert_allclose(s.infer(x)["logits"], ref.infer(x)["logits"], atol=1e-5)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
