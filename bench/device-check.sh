#!/usr/bin/env bash
# The one GPU check: builds native/ if nvcc exists, runs FastRec's parity suite and timings on CUDA, then the PyTorch peer, and prints a table.
#
# Here (a machine with .NET), prepare what travels:   bench/device-check.sh --pack
#   = ../shared/tools/device-pack.sh bench/FastRec.DeviceCheck/FastRec.DeviceCheck.csproj  (fills .devrt/, git-excluded)
# On the GPU machine (no .NET; carry ".devrt"), from the repository root:
#   bash bench/device-check.sh            # everything goes to $OUT (or ./out/device), the table prints last
# Here, to test the CPU parts without a GPU:
#   bench/device-check.sh --local          # the device verb on ILGPU's CPU accelerator with tiny shapes
#
# Every stage is guarded: a failing stage prints its error and the script goes on. Budget: about 8 minutes on an H100
# (native build ≤ 4 min worst case, FastRec check ≤ 5 min, PyTorch ≤ 2.5 min; each under its own timeout).
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD

if [ "${1:-}" = "--pack" ]; then
  for d in "$ROOT/../shared" "$ROOT/../../shared" "$ROOT/shared"; do
    [ -x "$d/tools/device-pack.sh" ] && exec "$d/tools/device-pack.sh" bench/FastRec.DeviceCheck/FastRec.DeviceCheck.csproj
  done
  echo "device-pack.sh not found under ../shared/tools (nor ../../shared, ./shared)" >&2
  exit 2
fi

OUT=${OUT:-$ROOT/out/device}
mkdir -p "$OUT"
LOG="$OUT/device-check.log"
# re-run this script with its output teed into the log (a pipe, so the last lines are flushed before it returns)
if [ -z "${FASTREC_DEVICE_CHECK_TEED:-}" ]; then
  FASTREC_DEVICE_CHECK_TEED=1 bash "$ROOT/bench/device-check.sh" "$@" 2>&1 | tee "$LOG"
  exit "${PIPESTATUS[0]}"
fi
export PYTHONUNBUFFERED=1 DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
# no ICU needed on the GPU image (FastRec formats with the invariant culture)
export DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1
T0=$SECONDS
stage() { echo; echo "##### [$((SECONDS - T0)) s] $*"; }

if [ "${1:-}" = "--local" ]; then
  stage "local run of the device verb (ILGPU CPU accelerator, tiny shapes)"
  dotnet build bench/FastRec.DeviceCheck -c Release -v q -nologo 2>&1 | tail -3
  dotnet bench/FastRec.DeviceCheck/bin/Release/net10.0/FastRec.DeviceCheck.dll --backend ilgpu-cpu --tiny --out "$OUT"
  rc=$?
  python3 bench/torch_peer.py table "$OUT/fastrec_device.json" "$OUT/torch.json"
  exit $rc
fi

# ------------------------------------------------------------------ machine
stage "machine"
export LD_LIBRARY_PATH="/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.sm,clocks.max.sm,temperature.gpu --format=csv \
  || echo "nvidia-smi failed"
if ! ldconfig -p 2>/dev/null | grep -q 'libcuda\.so ' && ! ls /usr/local/nvidia/lib64/libcuda.so >/dev/null 2>&1; then
  # ILGPU asks for libcuda.so; where only libcuda.so.1 exists, offer a link (the backend also resolves .so.1 itself)
  so1=$(ldconfig -p 2>/dev/null | awk '/libcuda\.so\.1 /{print $NF; exit}')
  [ -z "$so1" ] && [ -e /usr/local/nvidia/lib64/libcuda.so.1 ] && so1=/usr/local/nvidia/lib64/libcuda.so.1
  if [ -n "$so1" ]; then mkdir -p /tmp/cudalink && ln -sf "$so1" /tmp/cudalink/libcuda.so && export LD_LIBRARY_PATH="/tmp/cudalink:$LD_LIBRARY_PATH"; fi
fi
echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
command -v nvcc >/dev/null && nvcc --version | tail -2 || echo "no nvcc on PATH"
nproc; free -g | head -2

# ------------------------------------------------------------------ .NET runtime
stage ".NET runtime (from .devrt)"
DOTNET_OK=0
if [ -s .devrt/dotnet.tar.xz ] && [ -f .devrt/FastRec.DeviceCheck/FastRec.DeviceCheck.dll ]; then
  mkdir -p /tmp/dn && tar -C /tmp/dn -xJf .devrt/dotnet.tar.xz && export DOTNET_ROOT=/tmp/dn PATH=/tmp/dn:$PATH && DOTNET_OK=1
  dotnet --list-runtimes || DOTNET_OK=0
else
  echo "FAIL .devrt/ is missing or incomplete: run 'bench/device-check.sh --pack' on the build machine and carry .devrt"
fi

# ------------------------------------------------------------------ native library
stage "native library (cuBLASLt) with CMake"
if command -v nvcc >/dev/null && command -v cmake >/dev/null; then
  rm -rf build-native
  ok=0
  for host in "" g++-12 clang++; do
    if [ -n "$host" ]; then command -v "$host" >/dev/null || continue; export CUDAHOSTCXX=$host; echo "retrying with CUDAHOSTCXX=$host"; rm -rf build-native; fi
    if timeout 60 cmake -S . -B build-native -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
       && timeout 120 cmake --build build-native -j "$(nproc)"; then
      [ -f build-native/libfastrec_native.so ] && { ok=1; break; }
    fi
  done
  unset CUDAHOSTCXX
  if [ $ok = 1 ]; then
    export FASTREC_NATIVE_LIB=$ROOT/build-native/libfastrec_native.so
    ldd "$FASTREC_NATIVE_LIB" | grep -Ei 'cublas|cudart|not found'
    echo "native library: $FASTREC_NATIVE_LIB"
  else
    echo "FAIL native build: the ILGPU GEMM serves instead"
  fi
else
  echo "no nvcc/cmake: the ILGPU GEMM serves instead"
fi

# ------------------------------------------------------------------ FastRec on CUDA
stage "FastRec device check (parity vs CpuSimd, then timings)"
if [ $DOTNET_OK = 1 ]; then
  timeout 270 dotnet .devrt/FastRec.DeviceCheck/FastRec.DeviceCheck.dll --backend cuda --out "$OUT" --steps 10
  echo "FastRec device check exit code: $? (0 = every parity check passed; 124 = timeout)"
else
  echo "skipped: no .NET runtime"
fi

# ------------------------------------------------------------------ PyTorch peer
stage "PyTorch eager peer"
timeout 130 python3 bench/torch_peer.py run --out "$OUT/torch.json" --batch 32 --seq 128 --steps 10
echo "PyTorch peer exit code: $?"

# ------------------------------------------------------------------ table
stage "summary"
nvidia-smi --query-gpu=clocks.sm,temperature.gpu,power.draw --format=csv 2>/dev/null
python3 bench/torch_peer.py table "$OUT/fastrec_device.json" "$OUT/torch.json" | tee "$OUT/table.txt"
echo "total $((SECONDS - T0)) s; files in $OUT: $(ls "$OUT" | tr '\n' ' ')"
