// MSBuild inline task (RoslynCodeTaskFactory): marks one ELF version-need (e.g. GLIBCXX_3.4.32) weak so an older libstdc++ loads the library.
using System;
using System.Collections.Generic;
using System.IO;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

/// <summary>
/// <para>Why: TorchSharp's libLibTorchSharp.so was linked against GCC 13's libstdc++ and so asks for GLIBCXX_3.4.32, which Debian 12's libstdc++ (GCC 12) lacks. The only symbol of that version is _ZSt21ios_base_library_initv, which GCC 13 references from &lt;iostream&gt; without relocating against it. glibc's loader treats a missing version whose Vernaux has VER_FLG_WEAK as non-fatal, so setting that one flag makes the library load, and nothing else changes.</para>
/// <para>Safety: the task refuses (fails the build) unless the file is a well-formed ELF64 little-endian shared object whose .gnu.version_r names the version, and no dynamic relocation (SHT_RELA / SHT_REL against .dynsym) references a symbol bound to that version. It is idempotent: an already-weak entry is left alone. It writes to a temporary file in the same folder and renames it over the original (so a hard link into the NuGet cache is never modified), and it keeps the original last-write time so MSBuild's incremental copy does not re-copy the pristine file on every build.</para>
/// </summary>
public class WeakenElfVersionNeed : Task
{
    /// <summary>The ELF files to patch.</summary>
    [Required]
    public ITaskItem[] Files { get; set; } = new ITaskItem[0];

    /// <summary>The version-need name to weaken, e.g. GLIBCXX_3.4.32.</summary>
    [Required]
    public string VersionName { get; set; } = "";

    private const uint SHT_RELA = 4, SHT_DYNSYM = 11, SHT_REL = 9;
    private const uint SHT_GNU_VERNEED = 0x6ffffffe, SHT_GNU_VERSYM = 0x6fffffff;
    private const ushort VER_FLG_WEAK = 0x2;

    public override bool Execute()
    {
        foreach (ITaskItem item in Files)
        {
            string path = item.GetMetadata("FullPath");
            try
            {
                bool changed;
                string outcome = Patch(path, VersionName, out changed);
                // Quiet on incremental builds (already patched), visible when the file was actually changed.
                Log.LogMessage(changed ? MessageImportance.High : MessageImportance.Normal, "WeakenElfVersionNeed: " + path + ": " + outcome);
            }
            catch (InvalidDataException e)
            {
                Log.LogError("WeakenElfVersionNeed: cannot weaken version need '" + VersionName + "' in '" + path + "': " + e.Message);
            }
        }
        return !Log.HasLoggedErrors;
    }

    private sealed class Section
    {
        public int Index; public uint Type; public ulong Offset; public ulong Size; public uint Link; public uint Info; public ulong EntSize;
    }

    /// <summary>Patches one file; returns what was done. Throws InvalidDataException naming the problem.</summary>
    private static string Patch(string path, string versionName, out bool changed)
    {
        changed = false;
        if (!File.Exists(path)) throw new InvalidDataException("file not found");
        byte[] img = File.ReadAllBytes(path);
        if (img.Length < 64 || img[0] != 0x7f || img[1] != (byte)'E' || img[2] != (byte)'L' || img[3] != (byte)'F')
            throw new InvalidDataException("not an ELF file (bad magic)");
        if (img[4] != 2) throw new InvalidDataException("not ELF64 (EI_CLASS = " + img[4] + ")");
        if (img[5] != 1) throw new InvalidDataException("not little-endian (EI_DATA = " + img[5] + ")");
        if (U16(img, 0x10) != 3) throw new InvalidDataException("not a shared object (e_type = " + U16(img, 0x10) + ", expected ET_DYN = 3)");

        ulong shoff = U64(img, 0x28);
        int shentsize = U16(img, 0x3A), shnum = U16(img, 0x3C);
        if (shoff == 0 || shnum == 0) throw new InvalidDataException("no section header table (stripped or extended numbering)");
        if (shentsize != 64) throw new InvalidDataException("e_shentsize is " + shentsize + ", expected 64");
        if (shoff + (ulong)shnum * 64 > (ulong)img.Length) throw new InvalidDataException("section header table runs past the end of the file");

        var sections = new List<Section>();
        for (int i = 0; i < shnum; i++)
        {
            int h = checked((int)(shoff + (ulong)i * 64));
            var s = new Section
            {
                Index = i, Type = U32(img, h + 4), Offset = U64(img, h + 0x18), Size = U64(img, h + 0x20),
                Link = U32(img, h + 0x28), Info = U32(img, h + 0x2C), EntSize = U64(img, h + 0x38),
            };
            if (s.Type != 8 /* SHT_NOBITS */ && s.Offset + s.Size > (ulong)img.Length)
                throw new InvalidDataException("section " + i + " runs past the end of the file");
            sections.Add(s);
        }

        Section verneed = Single(sections, SHT_GNU_VERNEED, ".gnu.version_r (SHT_GNU_verneed)");
        Section dynsym = Single(sections, SHT_DYNSYM, ".dynsym (SHT_DYNSYM)");
        Section versym = Single(sections, SHT_GNU_VERSYM, ".gnu.version (SHT_GNU_versym)");
        if (verneed.Link >= sections.Count) throw new InvalidDataException(".gnu.version_r links to a missing string table");
        Section dynstr = sections[(int)verneed.Link];
        if (dynsym.EntSize != 24) throw new InvalidDataException(".dynsym entry size is " + dynsym.EntSize + ", expected 24");
        ulong nsym = dynsym.Size / 24;
        if (versym.Size != nsym * 2) throw new InvalidDataException(".gnu.version has " + versym.Size / 2 + " entries for " + nsym + " symbols");

        // Walk Verneed (16 bytes: vn_version, vn_cnt, vn_file, vn_aux, vn_next) and its Vernaux chain
        // (16 bytes: vna_hash, vna_flags, vna_other, vna_name, vna_next).
        var targets = new List<int>(); // file offsets of matching Vernaux entries
        var versionIndices = new HashSet<int>();
        ulong vn = verneed.Offset;
        for (uint n = 0; n < verneed.Info; n++)
        {
            Within(vn, 16, verneed, "Verneed entry " + n);
            if (U16(img, (int)vn) != 1) throw new InvalidDataException("Verneed entry " + n + " has vn_version " + U16(img, (int)vn) + ", expected 1");
            int cnt = U16(img, (int)vn + 2);
            ulong aux = vn + U32(img, (int)vn + 8);
            for (int k = 0; k < cnt; k++)
            {
                Within(aux, 16, verneed, "Vernaux entry " + k + " of Verneed " + n);
                string name = Str(img, dynstr, U32(img, (int)aux + 8));
                if (name == versionName)
                {
                    targets.Add((int)aux);
                    versionIndices.Add(U16(img, (int)aux + 6) & 0x7fff);
                }
                uint next = U32(img, (int)aux + 12);
                if (next == 0 && k != cnt - 1) throw new InvalidDataException("Vernaux chain of Verneed " + n + " ends early");
                aux += next;
            }
            uint vnNext = U32(img, (int)vn + 12);
            if (vnNext == 0 && n != verneed.Info - 1) throw new InvalidDataException("Verneed chain ends early");
            vn += vnNext;
        }
        if (targets.Count == 0)
            throw new InvalidDataException("no version need named '" + versionName + "' in .gnu.version_r (has the TorchSharp package changed? re-check build/WeakenElfVersionNeed.cs)");

        // Symbols bound to that version, and any dynamic relocation against them.
        var bound = new HashSet<ulong>();
        for (ulong s = 0; s < nsym; s++)
            if (versionIndices.Contains(U16(img, checked((int)(versym.Offset + s * 2))) & 0x7fff)) bound.Add(s);
        foreach (Section rel in sections)
        {
            if ((rel.Type != SHT_RELA && rel.Type != SHT_REL) || rel.Link != (uint)dynsym.Index) continue;
            ulong entSize = rel.Type == SHT_RELA ? 24UL : 16UL;
            for (ulong off = rel.Offset; off + entSize <= rel.Offset + rel.Size; off += entSize)
            {
                ulong sym = U64(img, checked((int)off + 8)) >> 32;
                if (bound.Contains(sym))
                {
                    ulong st = dynsym.Offset + sym * 24;
                    string symName = Str(img, dynstr, U32(img, checked((int)st)));
                    throw new InvalidDataException("a relocation references '" + symName + "@" + versionName + "', so the symbol is really used and weakening the version would be unsafe");
                }
            }
        }

        foreach (int aux in targets)
        {
            ushort flags = U16(img, aux + 4);
            if ((flags & VER_FLG_WEAK) != 0) continue;
            flags |= VER_FLG_WEAK;
            img[aux + 4] = (byte)flags; img[aux + 5] = (byte)(flags >> 8);
            changed = true;
        }
        if (!changed) return versionName + " already weak (" + bound.Count + " symbol(s), no relocations); nothing to do";

        // Copy (keeps the file mode), patch the copy, then rename it over the original: a hard link into the
        // NuGet cache is replaced rather than written through.
        DateTime stamp = File.GetLastWriteTimeUtc(path);
        string tmp = path + ".weaken.tmp";
        File.Copy(path, tmp, true);
        using (var fs = new FileStream(tmp, FileMode.Open, FileAccess.ReadWrite))
            foreach (int aux in targets)
            {
                fs.Position = aux + 4;
                fs.Write(img, aux + 4, 2);
            }
        File.SetLastWriteTimeUtc(tmp, stamp);
        File.Replace(tmp, path, null);
        return "set VER_FLG_WEAK on " + versionName + " (" + bound.Count + " symbol(s), no relocations)";
    }

    private static Section Single(List<Section> sections, uint type, string what)
    {
        Section found = null;
        foreach (Section s in sections)
            if (s.Type == type)
            {
                if (found != null) throw new InvalidDataException("more than one " + what + " section");
                found = s;
            }
        if (found == null) throw new InvalidDataException("no " + what + " section");
        return found;
    }

    private static void Within(ulong off, ulong len, Section s, string what)
    {
        if (off < s.Offset || off + len > s.Offset + s.Size) throw new InvalidDataException(what + " lies outside .gnu.version_r");
    }

    private static string Str(byte[] img, Section strtab, uint index)
    {
        if (index >= strtab.Size) throw new InvalidDataException("string index " + index + " outside the string table");
        int start = checked((int)(strtab.Offset + index)), end = start, limit = checked((int)(strtab.Offset + strtab.Size));
        while (end < limit && img[end] != 0) end++;
        if (end == limit) throw new InvalidDataException("unterminated string in the string table");
        return System.Text.Encoding.ASCII.GetString(img, start, end - start);
    }

    private static ushort U16(byte[] b, int o) { return (ushort)(b[o] | b[o + 1] << 8); }
    private static uint U32(byte[] b, int o) { return (uint)(b[o] | b[o + 1] << 8 | b[o + 2] << 16 | b[o + 3] << 24); }
    private static ulong U64(byte[] b, int o) { return U32(b, o) | (ulong)U32(b, o + 4) << 32; }
}
