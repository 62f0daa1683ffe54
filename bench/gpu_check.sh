#!/usr/bin/env bash
# One short, self-contained GPU check of `lsfix extract` (about 3 minutes on one H100/H200;
# 187 s on an H200 with torch 2.11).
#
#   bash bench/gpu_check.sh            # results under $OUT if set, else bench/out/gpu_check/
#
# It needs no internet. It uses the python3 that has torch (pip-installs `.[extract]` only when
# `import torch` fails), runs lsfix from this working tree, and:
#   1. prints the GPU (nvidia-smi) and the torch/CUDA it uses;
#   2. benchmarks extract against a bare model(x) loop on CUDA, AMP off / bf16 / fp16
#      (torchvision resnet50, random weights, 224x224, images/s for both);
#   3. trains a small CNN on a synthetic task on the GPU (so its logits are confident), then
#      extracts the same inputs on the CPU and on CUDA (off / bf16 / fp16, one of them through
#      the real `python -m lsfix extract` command line) and reports the largest logit
#      difference and the top-1 agreement against the CPU: strict fp32 must match closely,
#      AMP loosely.
# Exit status: 0 when every check passed, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
OUTDIR="${OUT:-bench/out/gpu_check}"
mkdir -p "$OUTDIR"
PY="${PYTHON:-python3}"
START=$(date +%s)

if ! "$PY" -c "import torch" 2>/dev/null; then
  echo "== torch not importable by $PY: pip install -e .[extract]"
  "$PY" -m pip install -q -e ".[extract]" || { echo "cannot install torch"; exit 1; }
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1

echo "== GPU"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1 \
  | tee "$OUTDIR/env.txt"
"$PY" - <<'EOF' 2>&1 | tee -a "$OUTDIR/env.txt"
import platform, sys, torch, h5py, numpy
print(f"python {platform.python_version()} at {sys.executable}")
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()})"
      f", h5py {h5py.__version__}, numpy {numpy.__version__}")
print(f"device: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'NO CUDA'}")
try:
    import torchvision
    print(f"torchvision {torchvision.__version__}")
except ImportError:
    print("torchvision missing")
EOF
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" \
  || { echo "CUDA is not available: nothing to check"; exit 1; }

status=0
echo "== throughput: lsfix extract vs bare model(x), resnet50 224x224, batch 256"
# (amp, images, workers): workers "" = extract's default (0 for arrays: a pinned-read thread)
for run in "off 8192 " "bf16 16384 " "fp16 16384 " "bf16 16384 8"; do
  set -- $run
  amp=$1; n=$2; w=${3:-}
  "$PY" bench/bench_extract.py --device cuda --amp "$amp" --model resnet50 --size 224 \
      --n "$n" --batch-size 256 --repeats 2 ${w:+--workers $w} \
      --json "$OUTDIR/bench_cuda_${amp}${w:+_workers$w}.json" 2>&1 \
      | tee -a "$OUTDIR/bench.txt" || status=1
done

echo "== CUDA logits vs CPU logits (small CNN trained here on a synthetic task)"
"$PY" - "$OUTDIR" <<'EOF' 2>&1 | tee "$OUTDIR/agreement.txt" || status=1
import json, os, subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np, torch, torchvision
from lsfix.extract.runner import ExtractOptions, run_extract
from lsfix.readers.entry import read as read_predictions

outdir = Path(sys.argv[1])
tmp = Path(tempfile.mkdtemp(prefix="lsfix-gpu-check-"))
rng = np.random.default_rng(0)
n, k = 2048, 10
# class c: a bright 8x8 square at one of 10 positions on noise, plus a colour tint
labels = rng.integers(0, k, n)
x = rng.integers(0, 120, (n, 3, 32, 32), dtype=np.uint8)
for i, c in enumerate(labels):
    r, q = divmod(int(c), 5)
    x[i, :, 4 + 14 * r: 12 + 14 * r, 2 + 6 * q: 8 + 6 * q] = 230
    x[i, c % 3] = np.minimum(x[i, c % 3].astype(int) + 20, 255)
np.savez(tmp / "data.npz", images=x, labels=labels)

torch.manual_seed(0)
net = torchvision.models.resnet18(num_classes=k).cuda()
opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
xt = (torch.from_numpy(x).float().cuda() / 255 - 0.5) / 0.25
yt = torch.from_numpy(labels).cuda()
t = time.perf_counter()
for step in range(150):
    idx = torch.randint(0, n, (128,), device="cuda")
    loss = torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx])
    opt.zero_grad(); loss.backward(); opt.step()
net.eval()
torch.save(net.cpu().state_dict(), tmp / "w.pt")
print(f"trained resnet18 for 150 steps in {time.perf_counter() - t:.1f} s, last loss {loss.item():.3f}")

def extract(device, amp, out, cli=False):
    args = dict(model="torchvision:resnet18(num_classes=10)", dataset=str(tmp / "data.npz"),
                output=str(out), weights=str(tmp / "w.pt"), mean=(0.5,), std=(0.25,),
                batch_size=256, device=device, amp=amp, quiet=True, overwrite=True)
    if cli:
        cmd = [sys.executable, "-m", "lsfix", "extract", args["model"], args["dataset"], "-o",
               str(out), "--weights", args["weights"], "--mean", "0.5", "--std", "0.25", "-b",
               "256", "--device", device, "--amp", amp, "--overwrite"]
        r = subprocess.run(cmd, capture_output=True, text=True)
        print(f"  CLI: {' '.join(cmd[3:])}\n  -> exit {r.returncode}: {r.stderr.strip()}")
        assert r.returncode == 0
        return None
    return run_extract(ExtractOptions(**args))

cpu = tmp / "cpu.h5"
extract("cpu", "off", cpu)
with read_predictions(str(cpu), need_labels=True) as p:
    ref, y = np.asarray(p.raw_logits), p.labels
print(f"CPU fp32: accuracy {np.mean(ref.argmax(1) == y):.3f} (the task is learnable; logits "
      f"scale: mean |z| {np.abs(ref).mean():.2f})")
tol = {"off": 1e-3, "bf16": 0.25, "fp16": 0.05}   # max |dz| relative to max |z|
agree_min = {"off": 0.999, "bf16": 0.97, "fp16": 0.99}
results, ok = {}, True
for amp in ("off", "bf16", "fp16"):
    out = tmp / f"cuda_{amp}.h5"
    extract("cuda", amp, out, cli=(amp == "bf16"))
    with read_predictions(str(out)) as p:
        z = np.asarray(p.raw_logits)
        prov = p.provenance
    assert z.dtype == np.float32, z.dtype
    diff = float(np.abs(z - ref).max())
    rel = diff / float(np.abs(ref).max())
    agree = float(np.mean(z.argmax(1) == ref.argmax(1)))
    good = rel <= tol[amp] and agree >= agree_min[amp]
    ok &= good
    results[amp] = {"max_abs_diff": diff, "max_rel_diff": rel, "top1_agreement": agree,
                    "pass": good, "device": prov.get("device"),
                    "fp32_precision": prov.get("fp32_precision")}
    print(f"CUDA amp={amp:4s}: max |dz| {diff:.2e} ({rel:.2e} of max |z|, limit {tol[amp]:.0e}),"
          f" top-1 agreement with CPU {agree:.4f} (min {agree_min[amp]}) -> "
          f"{'PASS' if good else 'FAIL'}  [{prov.get('device')}]")
(outdir / "agreement.json").write_text(json.dumps(results, indent=2) + "\n")
import shutil
shutil.rmtree(tmp, ignore_errors=True)
sys.exit(0 if ok else 1)
EOF
echo "== done in $(( $(date +%s) - START )) s; results in $OUTDIR; status $status"
exit $status
