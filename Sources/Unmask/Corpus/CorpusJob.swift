import Foundation

/// What `unmask embed` does with a corpus.
public struct CorpusJobOptions: Sendable {
    public var input: String
    /// nil writes to standard output (no resume, no ids file).
    public var output: String?
    public var format: CorpusFormat = .jsonl
    public var precision: EmbeddingPrecision = .float32
    /// JSONL fields copied into each output line (after `id`).
    public var keep: [String] = []
    /// The instruction of inputs that have none.
    public var instruction = ""
    /// Records read, length-sorted and embedded together; memory is bounded by it.
    public var window = 1024
    public var shard: CorpusShard?
    /// Continue an interrupted run from its journal.
    public var resume = false
    /// Texts whose vectors give int8/uint8 their ranges (default: the input's first `calibrationSize` records).
    public var calibration: String?
    public var calibrationSize = 1000

    public init(input: String) { self.input = input }
}

/// How far a run is: records of this part done, of how many, tokens fed to the model.
public struct CorpusProgress: Sendable {
    public let done: Int
    public let total: Int?
    public let tokens: Int
    public let seconds: Double
}

/// Embeds a corpus as a stream: reads a window of records, embeds it (length-sorted inside the
/// window), writes it in input order, and commits: the data files are synced, then a journal
/// records how many records and bytes are final. Killed at any moment, `resume` truncates the
/// files to the journal and goes on, so every record is written exactly once and the result is
/// byte-identical to an uninterrupted run. Finished files appear by rename.
public final class CorpusJob {
    public let options: CorpusJobOptions
    /// The input's record count and SHA-256 (nil for standard input).
    public let scan: CorpusScan?
    /// The files of a regular-file output (nil for standard output or a device).
    public let paths: CorpusPaths?
    /// Records [first, last) of the input this run embeds.
    public let range: Range<Int>?
    /// Whether `run` found the result already complete (a `--resume` after the end) and did nothing.
    public private(set) var wasFinished = false

    public init(options: CorpusJobOptions) throws {
        self.options = options
        guard options.window >= 1 else { throw UnmaskError.invalidInput(source: "--window", reason: "must be at least 1, got \(options.window)") }
        if let calibration = options.calibration {
            guard options.precision.needsCalibration else {
                throw UnmaskError.invalidInput(source: "--calibration", reason: "sets int8/uint8 ranges; --precision is \(options.precision.rawValue)")
            }
            guard FileManager.default.fileExists(atPath: calibration) else { throw UnmaskError.fileNotFound(path: calibration, what: "--calibration texts") }
        }
        if options.input == "-" {
            if options.resume { throw UnmaskError.invalidInput(source: "--resume", reason: "needs a file input: standard input cannot be read again") }
            if options.shard != nil { throw UnmaskError.invalidInput(source: "--shard", reason: "needs a file input: shards split a file's records") }
            if options.format == .npy { throw UnmaskError.invalidInput(source: "--format npy", reason: "needs a file input: the row count goes in the .npy header") }
            if options.precision.needsCalibration, options.calibration == nil {
                throw UnmaskError.invalidInput(source: "--precision \(options.precision.rawValue)", reason: "with standard input, give --calibration FILE (texts whose vectors set the ranges)")
            }
            scan = nil
            range = nil
        } else {
            let scan = try CorpusScan(path: options.input)
            self.scan = scan
            range = options.shard?.range(records: scan.records, window: options.window) ?? 0..<scan.records
        }
        if let scan, scan.isPlainText, !options.keep.isEmpty {
            throw UnmaskError.invalidInput(source: "--keep", reason: "\(options.input) is plain text (no fields); --keep needs JSONL input")
        }
        guard let output = options.output else {
            if options.resume { throw UnmaskError.invalidInput(source: "--resume", reason: "needs --output: standard output cannot be resumed") }
            if options.shard != nil { throw UnmaskError.invalidInput(source: "--shard", reason: "needs --output: each shard writes its own file") }
            paths = nil
            return
        }
        if Self.isStream(output) {
            if options.resume || options.shard != nil {
                throw UnmaskError.invalidInput(source: output, reason: "is not a regular file: --resume and --shard need a file output")
            }
            paths = nil
            return
        }
        // A link is followed: the file it names is replaced, the link stays.
        let paths = CorpusPaths(output: URL(fileURLWithPath: output).resolvingSymlinksInPath().path, format: options.format, shard: options.shard)
        self.paths = paths
        for path in [paths.data, paths.ids, paths.manifest].compactMap({ $0 }) {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
                throw UnmaskError.unwritableFile(path: path, reason: "it is a directory; give a file name")
            }
        }
        let folder = (paths.data as NSString).deletingLastPathComponent
        var isDirectory: ObjCBool = false
        if !folder.isEmpty, !(FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) && isDirectory.boolValue) {
            throw UnmaskError.unwritableFile(path: paths.data, reason: "folder \(folder) does not exist")
        }
        if !options.resume, FileManager.default.fileExists(atPath: paths.journal) {
            let done = (try? Self.readJournal(paths.journal))?.done
            throw UnmaskError.invalidInput(source: paths.data, reason: "an interrupted run left \(done.map { "\($0) records" } ?? "a journal") here: rerun with --resume to finish it, or delete \(paths.journal) and the .partial files to start over")
        }
    }

    /// Devices and pipes (/dev/stdout, a FIFO) are written in place, as a stream.
    static func isStream(_ path: String) -> Bool {
        let target = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        guard let type = try? FileManager.default.attributesOfItem(atPath: target)[.type] as? FileAttributeType else { return false }
        return type != .typeRegular && type != .typeDirectory
    }

    // MARK: Journal

    struct Journal: Codable {
        var manifest: CorpusManifest
        /// Records of the range committed.
        var done: Int
        /// Committed bytes of the data and ids files.
        var dataBytes: Int
        var idsBytes: Int
    }

    static func readJournal(_ path: String) throws -> Journal {
        do { return try JSONDecoder().decode(Journal.self, from: Data(contentsOf: URL(fileURLWithPath: path))) } catch {
            throw UnmaskError.malformedJSON(file: path, reason: "not an Unmask resume journal (\(error)); delete it and the .partial files to start over")
        }
    }

    static func writeJournal(_ journal: Journal, to path: String) throws {
        do { try JSONEncoder().encode(journal).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw UnmaskError.unwritableFile(path: path, error: error)
        }
    }

    // MARK: Run

    /// Embeds the records of `range` with `embedder` (whose `identity` names it in the journal and
    /// manifest), calling `progress` after each window. Returns the records written.
    @discardableResult
    public func run(embedder: TextEmbedder, identity: String, progress: ((CorpusProgress) -> Void)? = nil) throws -> Int {
        let start = Date()
        let tokensBefore = embedder.tokensProcessed
        guard let paths, let scan, let range else { return try stream(embedder: embedder, progress: progress, start: start) }
        var journal: Journal
        if options.resume, FileManager.default.fileExists(atPath: paths.journal) {
            journal = try Self.readJournal(paths.journal)
            if let why = planned(like: journal.manifest, scan: scan, identity: identity).mismatch(with: journal.manifest) {
                throw UnmaskError.invalidInput(source: paths.journal, reason: "cannot resume: \(why); delete it and the .partial files to start over")
            }
        } else {
            if options.resume, let done = try finished(paths, scan: scan, identity: identity) {
                wasFinished = true
                return done
            }
            let ranges = try options.precision.needsCalibration ? calibrate(embedder: embedder) : nil
            let manifest = CorpusManifest(
                format: options.format, input: .init(path: options.input, sha256: scan.sha256, records: scan.records), model: identity,
                dimension: embedder.dimension, precision: options.precision, ranges: ranges, keep: options.keep, instruction: options.instruction,
                window: options.window, first: range.lowerBound, last: range.upperBound, shard: options.shard,
                embeddings: (paths.data as NSString).lastPathComponent, ids: paths.ids.map { ($0 as NSString).lastPathComponent })
            journal = Journal(manifest: manifest, done: 0, dataBytes: 0, idsBytes: 0)
            if options.format == .npy {
                let header = NPYHeader.bytes(descriptor: options.precision.npyDescriptor, rows: range.count,
                                             columns: options.precision.width(dimension: embedder.dimension))
                journal.dataBytes = header.count
                try Self.create(CorpusPaths.partial(paths.data), contents: Data(header))
                try Self.create(CorpusPaths.partial(paths.ids!), contents: Data())
            } else {
                try Self.create(CorpusPaths.partial(paths.data), contents: Data())
            }
            try Self.writeJournal(journal, to: paths.journal)
        }
        if journal.done == range.count {
            // Killed while finishing: the files may be renamed already.
            try finish(paths, journal: journal)
            return journal.done
        }
        let data = try Appender(path: CorpusPaths.partial(paths.data), keeping: journal.dataBytes)
        let ids = try paths.ids.map { try Appender(path: CorpusPaths.partial($0), keeping: journal.idsBytes) }
        let reader = try CorpusReader(path: options.input, keep: options.keep, defaultInstruction: options.instruction)
        let skip = range.lowerBound + journal.done
        for _ in 0..<skip where try reader.next() == nil {
            throw UnmaskError.invalidInput(source: options.input, reason: "changed while being read: it has fewer than the \(scan.records) records the scan counted")
        }
        var done = journal.done
        let resumedAt = done
        while done < range.count {
            var window: [CorpusRecord] = []
            while window.count < min(options.window, range.count - done), let record = try reader.next() { window.append(record) }
            guard window.count == min(options.window, range.count - done) else {
                throw UnmaskError.invalidInput(source: options.input, reason: "changed while being read: it ended after \(range.lowerBound + done + window.count) records, the scan counted \(scan.records)")
            }
            let vectors = try embed(window, with: embedder)
            let (lines, idLines) = render(window, vectors, ranges: journal.manifest.ranges)
            try data.append(lines)
            if let ids { try ids.append(idLines) }
            try data.sync()
            try ids?.sync()
            done += window.count
            journal.done = done
            journal.dataBytes = data.size
            journal.idsBytes = ids?.size ?? 0
            try Self.writeJournal(journal, to: paths.journal)
            progress?(CorpusProgress(done: done - resumedAt, total: range.count - resumedAt, tokens: embedder.tokensProcessed - tokensBefore,
                                     seconds: Date().timeIntervalSince(start)))
        }
        try data.close()
        try ids?.close()
        try finish(paths, journal: journal)
        return done
    }

    /// Whether a finished result of the same job is already there (a rerun with --resume after the end).
    private func finished(_ paths: CorpusPaths, scan: CorpusScan, identity: String) throws -> Int? {
        guard let manifestPath = paths.manifest else {
            // A plain JSONL result has no manifest: its presence without a journal means finished.
            return FileManager.default.fileExists(atPath: paths.data) ? range?.count : nil
        }
        guard FileManager.default.fileExists(atPath: manifestPath) else { return nil }
        let manifest = try CorpusManifest.load(manifestPath)
        if let why = planned(like: manifest, scan: scan, identity: identity).mismatch(with: manifest) {
            throw UnmaskError.invalidInput(source: manifestPath, reason: "a finished result of another job is here: \(why); delete it to embed again")
        }
        return manifest.rows
    }

    /// What this run would make, in the fields an earlier run's `manifest` is checked on.
    private func planned(like manifest: CorpusManifest, scan: CorpusScan, identity: String) -> CorpusManifest {
        var planned = manifest
        planned.input = CorpusManifest.Input(path: options.input, sha256: scan.sha256, records: scan.records)
        planned.model = identity
        planned.format = options.format
        planned.precision = options.precision
        planned.keep = options.keep
        planned.instruction = options.instruction
        planned.window = options.window
        planned.shard = options.shard
        return planned
    }

    /// Renames the partial files into place, then writes the manifest, then drops the journal: a
    /// reader that sees the manifest sees every file complete.
    private func finish(_ paths: CorpusPaths, journal: Journal) throws {
        for path in [paths.data, paths.ids].compactMap({ $0 }) {
            let partial = CorpusPaths.partial(path)
            if FileManager.default.fileExists(atPath: partial) { try Self.rename(partial, to: path) }
        }
        if let manifest = paths.manifest {
            do { try journal.manifest.encoded().write(to: URL(fileURLWithPath: manifest), options: .atomic) } catch {
                throw UnmaskError.unwritableFile(path: manifest, error: error)
            }
        }
        try? FileManager.default.removeItem(atPath: paths.journal)
    }

    /// Standard output or a device: JSONL lines (or one .npy array) as windows finish.
    private func stream(embedder: TextEmbedder, progress: ((CorpusProgress) -> Void)?, start: Date) throws -> Int {
        let target: FileHandle
        let name: String
        if let output = options.output {
            name = output
            guard let handle = FileHandle(forWritingAtPath: URL(fileURLWithPath: output).resolvingSymlinksInPath().path) else {
                throw UnmaskError.unwritableFile(path: output, reason: "cannot open it for writing")
            }
            target = handle
        } else {
            name = "standard output"
            target = FileHandle.standardOutput
        }
        func write(_ data: Data) throws {
            do { try target.write(contentsOf: data) } catch {
                throw UnmaskError.unwritableFile(path: name, error: error)
            }
        }
        let tokensBefore = embedder.tokensProcessed
        let ranges = try options.precision.needsCalibration ? calibrate(embedder: embedder) : nil
        if options.format == .npy, let scan {
            try write(Data(NPYHeader.bytes(descriptor: options.precision.npyDescriptor, rows: scan.records,
                                           columns: options.precision.width(dimension: embedder.dimension))))
        }
        let reader = try CorpusReader(path: options.input, keep: options.keep, defaultInstruction: options.instruction)
        var done = 0
        while true {
            var window: [CorpusRecord] = []
            while window.count < options.window, let record = try reader.next() { window.append(record) }
            if window.isEmpty { break }
            let vectors = try embed(window, with: embedder)
            try write(render(window, vectors, ranges: ranges).data)
            done += window.count
            progress?(CorpusProgress(done: done, total: scan?.records, tokens: embedder.tokensProcessed - tokensBefore, seconds: Date().timeIntervalSince(start)))
        }
        guard done > 0 else { throw UnmaskError.invalidInput(source: options.input, reason: "no texts: the input is empty") }
        if target !== FileHandle.standardOutput { try? target.close() }
        return done
    }

    private func embed(_ window: [CorpusRecord], with embedder: TextEmbedder) throws -> [[Float]] {
        do { return try embedder.encode(window.map(\.input), progress: nil) } catch let error as UnmaskError {
            // The embedder numbers inputs within the window; name the input file's lines.
            throw UnmaskError.invalidInput(source: "\(options.input):\(window.first!.line)-\(window.last!.line)", reason: error.description)
        }
    }

    /// The window's output bytes: the data lines (JSONL) or rows (npy), and the ids lines (npy).
    private func render(_ window: [CorpusRecord], _ vectors: [[Float]], ranges: QuantizationRanges?) -> (data: Data, ids: Data) {
        var data = Data(), ids = Data()
        for (record, vector) in zip(window, vectors) {
            var prefix = "{\"id\": \(record.id)"
            for (name, value) in zip(options.keep, record.kept) { prefix += ", \(JSONText.string(name)): \(value)" }
            if options.format == .npy {
                data.append(contentsOf: EmbeddingQuantizer.bytes(vector, precision: options.precision, ranges: ranges))
                ids.append(contentsOf: Array((prefix + "}\n").utf8))
            } else {
                var line = prefix + ", \"embedding\": ["
                let values = EmbeddingQuantizer.values(vector, precision: options.precision, ranges: ranges)
                let integral = options.precision != .float32 && options.precision != .float16
                for (i, value) in values.enumerated() {
                    if i > 0 { line += ", " }
                    line += integral ? String(Int(value)) : Float(value).description
                }
                line += "]}\n"
                data.append(contentsOf: Array(line.utf8))
            }
        }
        return (data, ids)
    }

    /// int8/uint8 ranges: from `--calibration`'s texts, else the input's first records (the same
    /// for every shard, so shards quantize alike).
    private func calibrate(embedder: TextEmbedder) throws -> QuantizationRanges {
        let reader = try CorpusReader(path: options.calibration ?? options.input, defaultInstruction: options.instruction)
        var inputs: [EncoderInput] = []
        while (options.calibration != nil || inputs.count < options.calibrationSize), let record = try reader.next() { inputs.append(record.input) }
        return try QuantizationRanges(calibration: embedder.encode(inputs, progress: nil))
    }

    // MARK: Files

    static func create(_ path: String, contents: Data) throws {
        guard FileManager.default.createFile(atPath: path, contents: contents) else {
            throw UnmaskError.unwritableFile(path: path, reason: "cannot create it")
        }
    }

    static func rename(_ from: String, to: String) throws {
        guard Foundation.rename(from, to) == 0 else {
            throw UnmaskError.unwritableFile(path: to, reason: String(cString: strerror(errno)))
        }
    }

    /// A file appended to, cut back first to what the journal committed.
    final class Appender {
        let path: String
        private let handle: FileHandle
        private(set) var size: Int

        init(path: String, keeping committed: Int) throws {
            self.path = path
            guard let handle = FileHandle(forUpdatingAtPath: path) else {
                throw UnmaskError.unreadableFile(path: path, reason: "the run's partial file is missing; delete the .resume.json journal to start over")
            }
            let length = try handle.seekToEnd()
            guard length >= UInt64(committed) else {
                throw UnmaskError.invalidInput(source: path, reason: "holds \(length) bytes, fewer than the \(committed) the journal committed; delete it and the journal to start over")
            }
            try handle.truncate(atOffset: UInt64(committed))
            try handle.seek(toOffset: UInt64(committed))
            self.handle = handle
            size = committed
        }

        func append(_ data: Data) throws {
            do { try handle.write(contentsOf: data) } catch {
                throw UnmaskError.unwritableFile(path: path, error: error)
            }
            size += data.count
        }

        func sync() throws {
            do { try handle.synchronize() } catch { throw UnmaskError.unwritableFile(path: path, reason: "cannot sync: \(error.localizedDescription)") }
        }

        func close() throws { try handle.close() }
    }
}
