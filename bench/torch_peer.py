#!/usr/bin/env python3
"""PyTorch eager peer for the device check: the same MiniLM-shaped BERT + MLP head, train step, batch-1 latency, GEMMs.

Usage:
  torch_peer.py run   --out torch.json [--batch 32] [--seq 128] [--steps 10]
  torch_peer.py table fastrec_device.json torch.json      # prints the side-by-side table

The model is transformers' BertModel with the MiniLM-L6 config (vocab 30522, hidden 384, 6 layers, 12 heads, FFN 1536,
GELU, dropout 0.1), random init, plus FastRec's head: [pooled | 2 dense features] -> Linear(386, 64) -> GELU ->
Dropout(0.1) -> Linear(64, 1), weighted BCE mean, clip_grad_norm_(1.0), AdamW(lr 2e-5, wd 0.01, no decay on biases and
LayerNorm). Timings: CUDA-synchronised wall clock, median after warm-up. Every stage is guarded: a failure is recorded
in the JSON and printed, and the next stage runs.
"""
import json
import statistics
import sys
import time
import traceback


def log(*a):
    print(*a, flush=True)


def median_ms(fn, warmup, reps, sync):
    for _ in range(warmup):
        fn()
    sync()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        sync()
        ts.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(ts)


def make_batch(torch, B, T, vocab, dense, device):
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, vocab, (B, T), generator=g)
    ids[:, 0] = 101
    mask = torch.ones(B, T)
    types = torch.zeros(B, T, dtype=torch.long)
    for b in range(B):
        length = max(2, T - 5 * (b % max(1, T // 5)))
        mask[b, length:] = 0
        ids[b, length:] = 0
        types[b, length // 2:length] = 1
    labels = (torch.rand(B, generator=g) < 0.5).float()
    weights = 0.5 + torch.rand(B, generator=g)
    dense_x = torch.rand(B, dense, generator=g) * 2 - 1
    to = lambda x: x.to(device)
    return to(ids), to(types), to(mask), to(dense_x), to(labels), to(weights)


def build(torch, attn, device):
    from transformers import BertConfig, BertModel
    cfg = BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
                     intermediate_size=1536, hidden_act="gelu", hidden_dropout_prob=0.1,
                     attention_probs_dropout_prob=0.1, max_position_embeddings=512, type_vocab_size=2,
                     layer_norm_eps=1e-12)
    try:
        cfg._attn_implementation = attn
    except Exception:  # noqa: BLE001 - older/newer transformers name it differently
        pass
    bert = BertModel(cfg, add_pooling_layer=True)
    nn = torch.nn

    class Rec(nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = bert
            self.dense = nn.Linear(384 + 2, 64)
            self.act = nn.GELU()
            self.drop = nn.Dropout(0.1)
            self.out = nn.Linear(64, 1)

        def forward(self, ids, types, mask, dense_x):
            pooled = self.bert(input_ids=ids, token_type_ids=types, attention_mask=mask).pooler_output
            h = torch.cat([pooled, dense_x], dim=1)
            return self.out(self.drop(self.act(self.dense(h)))).squeeze(1)

    model = Rec().to(device)
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=2e-5, eps=1e-8)
    return model, opt


def run(args):
    out = args[args.index("--out") + 1] if "--out" in args else "torch.json"
    B = int(args[args.index("--batch") + 1]) if "--batch" in args else 32
    T = int(args[args.index("--seq") + 1]) if "--seq" in args else 128
    steps = int(args[args.index("--steps") + 1]) if "--steps" in args else 10
    res = {"errors": []}

    def save():
        with open(out, "w") as f:
            json.dump(res, f, indent=2)

    def stage(name, fn):
        log(f"=== torch: {name}")
        t0 = time.perf_counter()
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - every stage is guarded
            log(f"FAIL torch stage '{name}': {type(e).__name__}: {e}")
            traceback.print_exc()
            res["errors"].append(f"{name}: {type(e).__name__}: {e}")
        log(f"    ({name}: {time.perf_counter() - t0:.1f} s)")
        save()

    import torch
    res["torch"] = torch.__version__
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    res["device"] = torch.cuda.get_device_name(0) if dev == "cuda" else "cpu"
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    try:
        import transformers
        res["transformers"] = transformers.__version__
    except Exception as e:  # noqa: BLE001
        res["errors"].append(f"import transformers: {e}")
    log(f"torch {res['torch']} on {res['device']}, transformers {res.get('transformers')}")

    def gemm():
        rows = []
        for (M, N, K, what) in [(4096, 384, 384, "QKV/out proj"), (4096, 1536, 384, "FFN up"),
                                (4096, 384, 1536, "FFN down"), (2048, 2048, 2048, "square 2048")]:
            a = torch.rand(M, K, device=dev) * 2 - 1
            w = torch.rand(N, K, device=dev) * 2 - 1
            row = {"m": M, "n": N, "k": K, "what": what}
            for tf32 in (False, True):
                torch.backends.cuda.matmul.allow_tf32 = tf32
                ms = median_ms(lambda: torch.matmul(a, w.t()), 3, 20, sync)
                key = "tf32" if tf32 else "fp32"
                row[f"{key}_ms"] = ms
                row[f"{key}_tflops"] = 2.0 * M * N * K / ms / 1e9
            torch.backends.cuda.matmul.allow_tf32 = False
            rows.append(row)
            log(f"torch gemm {M}x{N}x{K}: fp32 {row['fp32_ms']:.3f} ms ({row['fp32_tflops']:.1f} TFLOP/s), "
                f"tf32 {row['tf32_ms']:.3f} ms ({row['tf32_tflops']:.1f} TFLOP/s)")
        res["gemm"] = rows

    def train():
        batch = make_batch(torch, B, T, 30522, 2, dev)
        ids, types, mask, dense_x, labels, weights = batch
        res["train_step"] = {"B": B, "T": T}
        for name, attn, tf32 in [("eager_fp32", "eager", False), ("sdpa_fp32", "sdpa", False), ("sdpa_tf32", "sdpa", True)]:
            try:
                torch.backends.cuda.matmul.allow_tf32 = tf32
                torch.backends.cudnn.allow_tf32 = tf32
                torch.manual_seed(0)
                model, opt = build(torch, attn, dev)
                model.train()

                def step():
                    opt.zero_grad(set_to_none=False)
                    z = model(ids, types, mask, dense_x)
                    loss = (torch.nn.functional.binary_cross_entropy_with_logits(z, labels, reduction="none") * weights).sum() / weights.sum()
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                    opt.step()

                ms = median_ms(step, 3, steps, sync)
                res["train_step"][f"{name}_ms"] = ms
                res["train_step"][f"{name}_examples_per_s"] = B / (ms / 1000.0)
                log(f"torch train step B={B} T={T} [{name}]: {ms:.2f} ms ({B / (ms / 1000.0):.0f} examples/s)")
                del model, opt
            except Exception as e:  # noqa: BLE001
                log(f"FAIL torch train variant {name}: {type(e).__name__}: {e}")
                res["errors"].append(f"train {name}: {type(e).__name__}: {e}")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False

    def latency():
        res["latency"] = {}
        torch.manual_seed(0)
        model, _ = build(torch, "eager", dev)
        model.eval()
        for t in (32, 128):
            ids, types, mask, dense_x, _, _ = make_batch(torch, 1, t, 30522, 2, dev)
            with torch.no_grad():
                ms = median_ms(lambda: model(ids, types, mask, dense_x).cpu(), 5, 50, sync)
            res["latency"][f"eager_T{t}_ms"] = ms
            log(f"torch latency batch 1, T={t} [eager fp32]: {ms:.3f} ms")

    stage("GEMM", gemm)
    stage("train step", train)
    stage("latency", latency)
    save()
    log(f"torch peer: results in {out}")


def fmt(x, spec="{:.3f}"):
    return "-" if x is None else spec.format(x)


def table(args):
    fr = json.load(open(args[0])) if len(args) > 0 else {}
    tr = {}
    if len(args) > 1:
        try:
            tr = json.load(open(args[1]))
        except Exception as e:  # noqa: BLE001
            print(f"(no torch results: {e})")
    be = fr.get("backend", {})
    print()
    print("=" * 100)
    print(f"FastRec device check on {be.get('device', '?')} ({be.get('name', '?')}; native: {be.get('native', '?')})")
    print(f"torch {tr.get('torch', '-')} on {tr.get('device', '-')}, transformers {tr.get('transformers', '-')}")
    print(f"parity: {fr.get('pass', '?')} passed, {fr.get('fail', '?')} failed")
    print("-" * 100)
    print("GEMM, ms (A·Bᵀ as in Linear)      ILGPU auto  tile64  tile128  cuBLASLt  torch fp32  torch tf32 | TFLOP/s: ILGPU  Lt  torch tf32")
    tg = {(r["m"], r["n"], r["k"]): r for r in tr.get("gemm", [])}
    for r in fr.get("gemm", []):
        t = tg.get((r["m"], r["n"], r["k"]), {})
        print(f"{r['m']}x{r['n']}x{r['k']} {r.get('what', ''):<22} {fmt(r.get('ilgpu_ms')):>9} {fmt(r.get('ilgpu64_ms')):>7} "
              f"{fmt(r.get('ilgpu128_ms')):>8} {fmt(r.get('native_ms')):>9} {fmt(t.get('fp32_ms')):>11} {fmt(t.get('tf32_ms')):>11} | "
              f"{fmt(r.get('ilgpu_tflops'), '{:.1f}'):>14} {fmt(r.get('native_tflops'), '{:.1f}'):>4} {fmt(t.get('tf32_tflops'), '{:.1f}'):>11}")
    print("-" * 100)
    ts, tts = fr.get("train_step", {}), tr.get("train_step", {})
    print(f"train step MiniLM-L6 + head, B={ts.get('B', '?')} T={ts.get('T', '?')} (ms, median):")
    rows = [("FastRec ILGPU (fp32)", ts.get("ilgpu_ms")), ("FastRec ILGPU + cuBLASLt (TF32)", ts.get("native_ms")),
            ("torch eager fp32", tts.get("eager_fp32_ms")), ("torch sdpa fp32", tts.get("sdpa_fp32_ms")),
            ("torch sdpa tf32", tts.get("sdpa_tf32_ms"))]
    base = tts.get("eager_fp32_ms")
    for name, ms in rows:
        ratio = "" if ms is None or base is None else f"   {base / ms:.2f}x torch eager fp32 speed"
        eps = "" if ms is None else f"   {ts.get('B', 32) / (ms / 1000):.0f} examples/s"
        print(f"  {name:34} {fmt(ms, '{:.2f}'):>9}{eps}{ratio}")
    print("-" * 100)
    lat, tlat = fr.get("latency", {}), tr.get("latency", {})
    print("batch-1 latency (ms, median):")
    for t in (32, 128):
        print(f"  T={t:<4} FastRec GPU {fmt(lat.get(f'target_T{t}_ms')):>8}   FastRec CPU {fmt(lat.get(f'cpu_T{t}_ms')):>8}   "
              f"torch eager GPU {fmt(tlat.get(f'eager_T{t}_ms')):>8}")
    errs = fr.get("stage_errors", []) + tr.get("errors", [])
    if errs:
        print("-" * 100)
        print("stage errors:")
        for e in errs:
            print("  " + e)
    print("=" * 100)


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("run", "table"):
        print(__doc__)
        sys.exit(2)
    (run if sys.argv[1] == "run" else table)(sys.argv[2:])
