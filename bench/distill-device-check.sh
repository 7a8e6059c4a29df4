#!/usr/bin/env bash
# Device check of distillation + serving: MSE kernel and a distillation step on CUDA vs CpuSimd, then Predictor vs ORT latency on 2 pinned cores.
#
# Here (with .NET):  ../shared/tools/device-pack.sh bench/FastRec.DistillCheck/FastRec.DistillCheck.csproj ; cp bench/ort_minilm_peer.py .devrt/
# On the GPU machine (carry ".devrt"), from the repository root:  bash bench/distill-device-check.sh
# The ORT peer exports a MiniLM-L6-shaped BertModel (random weights, transformers, eager attention) to ONNX and times it with
# the onnxruntime installed there; the original model.onnx (88 MB) is too large to carry. Both engines run on cores 2,3.
set -u
OUT=${OUT:-./out/distill}
mkdir -p "$OUT"
mkdir -p /tmp/dn && tar -C /tmp/dn -xJf .devrt/dotnet.tar.xz && export DOTNET_ROOT=/tmp/dn PATH=/tmp/dn:$PATH
export DOTNET_SYSTEM_GLOBALIZATION_INVARIANT=1 LD_LIBRARY_PATH=/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}
nproc; lscpu | grep -E "Model name|^CPU\(s\)"
timeout 270 taskset -c 2,3 dotnet .devrt/FastRec.DistillCheck/FastRec.DistillCheck.dll --backend cuda --requests 100 --out "$OUT/distill_check.json" 2>&1 | tee "$OUT/distill_check.log"
timeout 250 taskset -c 2,3 python3 .devrt/ort_minilm_peer.py --requests 100 --out "$OUT/ort.json" 2>&1 | grep -v Warning | tail -25 | tee "$OUT/ort.log"
