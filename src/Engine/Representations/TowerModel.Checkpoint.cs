// TowerModel's training checkpoint: the whole state after an epoch in one checksummed file, and the resume from it.
using System.Buffers.Binary;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using FastRec.Engine.Data;
using FastRec.Engine.Weights;

namespace FastRec.Engine.Representations;

public sealed partial class TowerModel
{
    private static ReadOnlySpan<byte> CheckpointMagic => "FRTC"u8;
    private const int CheckpointVersion = 1;

    /// <summary>SHA-256 of everything the training trajectory depends on: the options that shape it (not Epochs, Patience or
    /// the path), the shapes, the item encodings and the training and validation rows.</summary>
    private byte[] Fingerprint(ExampleSet train, ExampleSet validation)
    {
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var o = Options;
        string shape = string.Create(CultureInfo.InvariantCulture,
            $"tower v1|{o.Dim}|{o.Hidden}|{o.HistoryLength}|{o.ItemResidual}|{o.ResidualDecay:R}|{o.Negatives}|{o.ExposureWeight:R}|{o.BatchSize}|" +
            $"{o.LearningRate:R}|{o.WeightDecay:R}|{o.MaxGradNorm:R}|{o.ValidationRankingUsers}|{o.Seed}|V {V}|D {D}|count {_count}");
        h.AppendData(Encoding.UTF8.GetBytes(shape));
        h.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(_x.AsSpan()));
        Span<byte> n = stackalloc byte[4];
        foreach (var set in new[] { train, validation })
        {
            BinaryPrimitives.WriteInt32LittleEndian(n, set.Count);
            h.AppendData(n);
            h.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(set.Users));
            h.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(set.Items));
            h.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(set.Labels));
            h.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(set.Weights));
            h.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(set.Timestamps));
        }
        return h.GetHashAndReset();
    }

    private sealed partial class Run
    {
        /// <summary>
        /// Writes the state after epoch <paramref name="epoch"/>, atomically: "FRTC" | version | fingerprint (32 bytes) | epoch,
        /// Adam step, epochs since the best, stopped (int32) | best epoch (int32), AUC, NDCG (float64) | history count and
        /// per epoch loss, AUC, NDCG (float64) | parameter count | parameters, m, v, best parameters (float32) | SHA-256.
        /// </summary>
        public void Save(string path, int epoch, byte[] fingerprint)
        {
            var m = _m;
            var p = new float[m._count]; var mm = new float[m._count]; var vv = new float[m._count];
            m._b.Download(m._p.All, p); m._b.Download(m._m.All, mm); m._b.Download(m._v.All, vv);
            AtomicFile.Write(path, stream =>
            {
                using var w = new ChecksummedWriter(stream);
                w.Bytes(CheckpointMagic);
                w.Int(CheckpointVersion);
                w.Bytes(fingerprint);
                foreach (int x in new[] { epoch, m._step, _since, Stopped ? 1 : 0, m.Best.Epoch }) w.Int(x);
                w.Double(m.Best.ValidationAuc); w.Double(m.Best.ValidationNdcg);
                w.Int(m.History.Count);
                foreach (var (loss, auc, ndcg) in m.History) { w.Double(loss); w.Double(auc); w.Double(ndcg); }
                w.Int(m._count);
                foreach (var a in new[] { p, mm, vv, _bestParams }) w.Floats(a);
                w.Finish();
            });
        }

        /// <summary>Restores the state saved in <paramref name="path"/>; returns the epoch it was saved after.</summary>
        /// <exception cref="InvalidDataException">the file is corrupt, truncated, of another format, or written for another run
        /// (the message names the file).</exception>
        public int Resume(string path, byte[] fingerprint)
        {
            var m = _m;
            byte[] b = File.ReadAllBytes(path);
            try
            {
                if (b.Length < 8 + ChecksummedFile.HashBytes || !b.AsSpan(0, 4).SequenceEqual(CheckpointMagic))
                    throw new InvalidDataException("not a tower training checkpoint (magic 'FRTC' missing)");
                if (!ChecksummedFile.Verify(b)) throw new InvalidDataException("fails its SHA-256 checksum: the file is corrupt or truncated");
                var r = new ChecksummedReader(b, 4);
                int version = r.Int();
                if (version != CheckpointVersion) throw new InvalidDataException($"format version {version}; this build reads version {CheckpointVersion}");
                if (!r.Bytes(fingerprint.Length, "the run fingerprint").SequenceEqual(fingerprint))
                    throw new InvalidDataException("was written for another run (other data, item vectors or options); delete it or choose another checkpoint path");
                int epoch = r.Int(), step = r.Int(), since = r.Int(), stopped = r.Int(), bestEpoch = r.Int();
                double bestAuc = r.Double(), bestNdcg = r.Double();
                int n = r.Int();
                if (epoch < 1 || step < 0 || since < 0 || stopped is not (0 or 1) || bestEpoch < 0 || bestEpoch > epoch || n != epoch)
                    throw new InvalidDataException($"holds an inconsistent state (epoch {epoch}, step {step}, best epoch {bestEpoch}, {n} history entries)");
                var history = new List<(double, double, double)>(n);
                for (int i = 0; i < n; i++) history.Add((r.Double(), r.Double(), r.Double()));
                int count = r.Int();
                if (count != m._count) throw new InvalidDataException($"holds {count} parameters; this model has {m._count}");
                var p = r.Floats(count, "parameters"); var mm = r.Floats(count, "Adam m"); var vv = r.Floats(count, "Adam v");
                var best = r.Floats(count, "best parameters");
                if (r.Position != b.Length - ChecksummedFile.HashBytes) throw new InvalidDataException("has bytes after its last section");
                m._b.Upload(m._p.All, p); m._b.Upload(m._m.All, mm); m._b.Upload(m._v.All, vv);
                best.CopyTo(_bestParams, 0);
                m._step = step; _since = since; Stopped = stopped == 1;
                m.Best = (bestEpoch, bestAuc, bestNdcg);
                m.History.Clear(); m.History.AddRange(history);
                for (int e = 1; e <= epoch; e++) Shuffle(e);   // the example order is shuffled in place epoch after epoch: replay it
                _log?.Invoke($"{m.Name}: resumed from {path} after epoch {epoch}" + (Stopped ? " (early stopping had ended the run)" : ""));
                return epoch;
            }
            catch (InvalidDataException e) { throw new InvalidDataException($"{path}: {e.Message}", e); }
        }
    }
}
