"""GPU check of the user code sandbox: a process sandboxed the way a local job is (server/sandbox.py)
sees the GPU it is given (CUDA_VISIBLE_DEVICES, /dev/nvidia* bound) and runs a bf16 matrix product on it, as
the sandbox's uid, writing only its own folder; with CUDA_VISIBLE_DEVICES empty it sees none.

    python bench/sandbox_gpu_check.py

Needs bwrap, setpriv and prlimit on PATH, torch, and our package's imports (pydantic, httpx). On a machine
without them, carry the bubblewrap .deb (unpack it with dpkg -x into a folder put on PATH) and wheels.
"""

import asyncio
import subprocess
import sys
import tempfile
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from adaptive_engine.server.sandbox import JOB_LIMITS, Sandbox, user_env  # noqa: E402

tmp = Path(tempfile.mkdtemp())
data = tmp / "data"
settings = types.SimpleNamespace(
    data_dir=data, resolved_files_dir=data / "files", model_cache_dir=None, allow_unsandboxed_code=False
)
sandbox = Sandbox(settings)
asyncio.run(sandbox.ready())
print("sandbox reason:", sandbox.reason, "as root:", sandbox.as_root, flush=True)
job = data / "jobs" / "j1"
job.mkdir(parents=True)
sandbox.hand_over(job)
code = (
    "import os, json, torch\n"
    "info = {'uid': os.getuid(), 'cvd': os.environ.get('CUDA_VISIBLE_DEVICES'), 'pids': len([p for p"
    " in os.listdir('/proc') if p.isdigit()]),"
    " 'cuda': torch.cuda.is_available(), 'count': torch.cuda.device_count()}\n"
    "if info['cuda']:\n"
    "    x = torch.ones(2048, 2048, device='cuda', dtype=torch.bfloat16)\n"
    "    info['name'] = torch.cuda.get_device_name(0); info['matmul'] = float((x @ x).float().sum())\n"
    "open(os.path.join(os.environ['HOME'], 'ok'), 'w').write('1')\n"
    "print(json.dumps(info))\n"
)
for visible in ("0", ""):
    env = user_env({"CUDA_VISIBLE_DEVICES": visible}, home=str(job))
    launch = asyncio.run(
        sandbox.launch(
            "gpu check",
            [sys.executable, "-c", code],
            cwd=job,
            env=env,
            limits=JOB_LIMITS,
            network=True,
            gpus=True,
            expose_model_cache=True,
            writable=[job],
        )
    )
    if visible:
        print(" ".join(launch.argv), flush=True)
    done = subprocess.run(launch.argv, env=launch.env, cwd=launch.cwd, capture_output=True, text=True, timeout=240)
    print(
        f"CUDA_VISIBLE_DEVICES={visible!r}: rc={done.returncode} out={done.stdout.strip()} err={done.stderr[-2500:]}",
        flush=True,
    )
print("job folder written:", (job / "ok").exists())
