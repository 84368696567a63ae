import Foundation

/// Joins the shards of a corpus run (`<base>-KKKKK-of-NNNNN.*`) into the result one process would
/// have written, in input order: the same bytes for JSONL; for npy one array, one ids file and
/// the unsharded manifest.
public enum CorpusMerge {
    /// Merges the shards of `output` and returns the number of records.
    @discardableResult
    public static func merge(output: String, format: CorpusFormat) throws -> Int {
        let target = CorpusPaths(output: output, format: format, shard: nil)
        let shards = try findShards(of: output, format: format)
        let manifests = try shards.map { try CorpusManifest.load($0.manifest!) }
        let first = manifests[0]
        for (paths, manifest) in zip(shards, manifests) {
            var comparable = manifest
            comparable.shard = first.shard
            if let why = comparable.mismatch(with: first) ?? (manifest.ranges != first.ranges ? "the int8 ranges differ" : nil) {
                throw UnmaskError.invalidInput(source: paths.manifest!, reason: "does not belong with \(shards[0].manifest!): \(why)")
            }
        }
        var next = 0
        for (paths, manifest) in zip(shards, manifests) {
            guard manifest.first == next else {
                throw UnmaskError.invalidInput(source: paths.manifest!, reason: "holds records \(manifest.first)..<\(manifest.last), expected them to start at \(next)")
            }
            next = manifest.last
        }
        guard next == first.input.records else {
            throw UnmaskError.invalidInput(source: shards.last!.manifest!, reason: "the shards end at record \(next) of \(first.input.records)")
        }
        let total = first.input.records
        let data = CorpusPaths.partial(target.data)
        try CorpusJob.create(data, contents: Data())
        let out = try CorpusJob.Appender(path: data, keeping: 0)
        if format == .npy {
            let width = first.precision.width(dimension: first.dimension)
            try out.append(Data(NPYHeader.bytes(descriptor: first.precision.npyDescriptor, rows: total, columns: width)))
            for paths in shards {
                let header = try NPYHeader.parse(try prefix(of: paths.data, count: 4096), path: paths.data)
                guard header.descriptor == first.precision.npyDescriptor, header.columns == width else {
                    throw UnmaskError.invalidInput(source: paths.data, reason: "holds \(header.descriptor) × \(header.columns), the manifest says \(first.precision.npyDescriptor) × \(width)")
                }
                try copy(paths.data, from: header.offset, to: out)
            }
            let ids = CorpusPaths.partial(target.ids!)
            try CorpusJob.create(ids, contents: Data())
            let idsOut = try CorpusJob.Appender(path: ids, keeping: 0)
            for paths in shards { try copy(paths.ids!, from: 0, to: idsOut) }
            try idsOut.sync()
            try idsOut.close()
        } else {
            for paths in shards { try copy(paths.data, from: 0, to: out) }
        }
        try out.sync()
        try out.close()
        try CorpusJob.rename(data, to: target.data)
        if let ids = target.ids { try CorpusJob.rename(CorpusPaths.partial(ids), to: ids) }
        if let manifestPath = target.manifest {
            var manifest = first
            manifest.shard = nil
            manifest.first = 0
            manifest.last = total
            manifest.embeddings = (target.data as NSString).lastPathComponent
            manifest.ids = target.ids.map { ($0 as NSString).lastPathComponent }
            try manifest.encoded().write(to: URL(fileURLWithPath: manifestPath), options: .atomic)
        }
        return total
    }

    /// Every shard of `output`, in order; refuses a missing or unfinished one by name.
    static func findShards(of output: String, format: CorpusFormat) throws -> [CorpusPaths] {
        let base = CorpusPaths.base(output, format: format)
        let folder = (base as NSString).deletingLastPathComponent
        let stem = (base as NSString).lastPathComponent
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.isEmpty ? "." : folder)) ?? []
        var counts: Set<Int> = []
        for name in names where name.hasPrefix(stem + "-") {
            let rest = name.dropFirst(stem.count)
            if let match = rest.prefixMatch(of: /-(\d{5})-of-(\d{5})\./), let count = Int(match.2) { counts.insert(count) }
        }
        guard let count = counts.first else {
            throw UnmaskError.fileNotFound(path: "\(base)-KKKKK-of-NNNNN.*", what: "the shards of \(output)")
        }
        guard counts.count == 1 else {
            throw UnmaskError.invalidInput(source: output, reason: "shards of several runs are here (of \(counts.sorted().map(String.init).joined(separator: ", ")) shards); keep one run's")
        }
        var shards: [CorpusPaths] = []
        var problems: [String] = []
        for index in 0..<count {
            let paths = CorpusPaths(output: output, format: format, shard: try CorpusShard(index: index, count: count))
            shards.append(paths)
            if FileManager.default.fileExists(atPath: paths.manifest!) { continue }
            if let journal = try? CorpusJob.readJournal(paths.journal) {
                problems.append("shard \(index) is unfinished (\(journal.done) of \(journal.manifest.rows) records; rerun it with --resume)")
            } else {
                problems.append("shard \(index) is missing (\(paths.manifest!))")
            }
        }
        guard problems.isEmpty else { throw UnmaskError.invalidInput(source: output, reason: problems.joined(separator: "; ")) }
        return shards
    }

    private static func prefix(of path: String, count: Int) throws -> Data {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw UnmaskError.fileNotFound(path: path, what: "shard data") }
        defer { try? handle.close() }
        return try handle.read(upToCount: count) ?? Data()
    }

    private static func copy(_ path: String, from offset: Int, to out: CorpusJob.Appender) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw UnmaskError.fileNotFound(path: path, what: "shard data") }
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(offset))
        while let block = try handle.read(upToCount: 1 << 22), !block.isEmpty { try out.append(block) }
    }
}
