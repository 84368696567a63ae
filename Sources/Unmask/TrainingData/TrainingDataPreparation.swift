import Foundation
import UnmaskKernels

/// `unmask data training`: unlabeled text for MNTP and SimCSE, and supervised pairs for
/// contrastive training, from the evaluation packages' unused parts and WordNet, with nothing
/// that overlaps the evaluation data (see README.md beside this file).
public struct TrainingDataPreparation {
    /// Bumped whenever what is built changes, so older outputs are rebuilt.
    public static let revision = 1
    public static let seed: UInt64 = 42
    /// WordNet could give about 13,000 definition pairs; 2,000 keeps them near the number of the
    /// other kinds together (about 1,700 section and news pairs).
    public static let wordDefinitionPairs = 2_000
    static let wikipediaDump = "gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
    /// A gloss needs this many words to say something (WordNet's are fragments, so no sentence check).
    static let glossWords = 4...TrainingText.wordRange.upperBound

    public static let textFiles = ["wikipedia.txt", "wordnet.txt", "news.txt", "unsupervised.txt"]
    public static let pairsFile = "supervised.jsonl"

    public let dataDirectory: URL
    /// nil leaves WordNet out.
    public let wordNetDirectory: URL?
    public var log: (String) -> Void

    public init(dataDirectory: URL, wordNetDirectory: URL? = WordNetDatabase.defaultDirectory, log: @escaping (String) -> Void = { _ in }) {
        self.dataDirectory = dataDirectory
        self.wordNetDirectory = wordNetDirectory
        self.log = log
    }

    /// `<data>/training`.
    public var directory: URL { dataDirectory.appendingPathComponent("training") }
    public var manifestURL: URL { directory.appendingPathComponent("manifest.json") }

    /// The packages and database the outputs come from, as the manifest records them.
    var sourceDescriptions: [String] {
        DataPreparation.packages.map { "\($0.name)==\($0.version)" } + (wordNetDirectory.map { ["WordNet 3.0 (\($0.path))"] } ?? [])
    }

    /// Whether the manifest matches this revision and sources and every file's checksum matches.
    public func isUpToDate() -> Bool {
        guard let manifest = try? TrainingDataManifest.read(manifestURL), manifest.revision == Self.revision,
              manifest.seed == Self.seed, manifest.sources == sourceDescriptions,
              Set(manifest.files.keys) == Set(Self.textFiles + [Self.pairsFile]) else { return false }
        return manifest.files.allSatisfy { name, file in
            (try? Checksum.hex(fileAt: directory.appendingPathComponent(name).path)) == file.sha256
        }
    }

    /// Installs the packages if needed and writes every output unless they are up to date.
    /// Returns false when nothing needed doing.
    @discardableResult
    public func prepare(force: Bool = false, python: String = "python3") throws -> Bool {
        if !force, isUpToDate() {
            log("\(directory.path): all files present and their checksums match; nothing to do")
            return false
        }
        // Read WordNet first: a missing database should fail before any download.
        let wordNet = try wordNetDirectory.map { try WordNetDatabase(directory: $0) }
        let packages = DataPreparation(directory: dataDirectory, log: log)
        try packages.installPackages(python: python)
        let reader = try packages.sourceReader()
        let evaluation = try EvaluationOverlap.evaluationTasks(from: reader)
        var filter = OverlapFilter(overlap: EvaluationOverlap(evaluationTexts: evaluation.flatMap(EvaluationOverlap.texts)))
        log("evaluation data indexed: \(evaluation.count) tasks")

        let articles = WikipediaDump.articles(fromXML: try reader.bzip2Text("gensim", Self.wikipediaDump))
        let wikipedia = filter.keep(articles.flatMap(Self.sentences), file: "wikipedia.txt")
        let glosses = filter.keep(wordNet.map(Self.glossLines) ?? [], file: "wordnet.txt")
        let stories = try NewsText.leeBackgroundStories(reader)
        let documents = try NewsText.newsgroupsTrain(reader) + NewsText.reutersOutsideR8(reader)
        let news = filter.keep(stories.flatMap(Self.sentences) + documents.compactMap(NewsText.opening), file: "news.txt")

        var random = SplitMix64(seed: Self.seed)
        let unsupervised = TrainingText.deduplicated(wikipedia + glosses + news).shuffled(using: &random)
        let wordSimilarityVocabulary = Set(evaluation.filter { $0.spec.family == "Word similarity" }.flatMap(EvaluationOverlap.texts).map { $0.lowercased() })
        var pairs = SupervisedPairs.wikipediaSections(articles, random: &random)
        if let wordNet {
            pairs += SupervisedPairs.wordDefinitions(wordNet, excluding: wordSimilarityVocabulary, count: Self.wordDefinitionPairs, random: &random)
        }
        pairs += SupervisedPairs.newsContinuations(stories)
        pairs = filter.keep(pairs, file: Self.pairsFile).shuffled(using: &random)

        try write(texts: ["wikipedia.txt": wikipedia, "wordnet.txt": glosses, "news.txt": news, "unsupervised.txt": unsupervised],
                  pairs: pairs, leftOut: filter.leftOut)

        log("wikipedia.txt: \(wikipedia.count) sentences from \(articles.count) articles")
        log("wordnet.txt: \(glosses.count) definitions and examples\(wordNet == nil ? " (WordNet skipped)" : "")")
        log("news.txt: \(news.count) lines (\(stories.count) Lee background stories, \(documents.count) newsgroup/Reuters training documents)")
        log("unsupervised.txt: \(unsupervised.count) lines; \(Self.pairsFile): \(pairs.count) pairs")
        log("left out for overlapping evaluation data: " + filter.leftOut.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        return true
    }

    /// Well-formed sentences of an article's paragraphs.
    static func sentences(_ article: WikiArticle) -> [String] {
        article.sections.flatMap(\.paragraphs).flatMap(sentences)
    }

    static func sentences(_ prose: String) -> [String] {
        SentenceSplitter.sentences(in: prose).filter(TrainingText.isWellFormedSentence)
    }

    /// The definitions and example sentences of the sense-tagged synsets (all of WordNet would be
    /// 150,000 lines, mostly rare taxonomy, and eight in ten lines of unsupervised.txt).
    static func glossLines(_ wordNet: WordNetDatabase) -> [String] {
        let tagged = wordNet.taggedSynsets
        return wordNet.synsets.filter { tagged.contains($0.id) }.flatMap { $0.definitions + $0.examples }.filter {
            glossWords.contains(TrainingText.wordCount($0)) && !TrainingText.hasMarkupResidue($0)
        }
    }

    /// Replaces the training folder with `texts` (one a line), `pairs` and the manifest.
    private func write(texts: [String: [String]], pairs: [TrainingPair], leftOut: [String: Int]) throws {
        try? FileManager.default.removeItem(at: directory)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var files: [String: TrainingDataManifest.File] = [:]
        func record(_ name: String, lines: Int) throws {
            files[name] = TrainingDataManifest.File(lines: lines, sha256: try Checksum.hex(fileAt: directory.appendingPathComponent(name).path))
        }
        for name in Self.textFiles {
            try writeAtomically(Data(texts[name]!.map { $0 + "\n" }.joined().utf8), to: directory.appendingPathComponent(name))
            try record(name, lines: texts[name]!.count)
        }
        try JSONLines.write(pairs, to: directory.appendingPathComponent(Self.pairsFile))
        try record(Self.pairsFile, lines: pairs.count)
        try TrainingDataManifest(revision: Self.revision, seed: Self.seed, sources: sourceDescriptions, files: files,
                                 leftOutForEvaluationOverlap: leftOut).write(manifestURL)
    }
}

/// Deduplicates and drops what overlaps evaluation data, counting what it dropped per file.
struct OverlapFilter {
    let overlap: EvaluationOverlap
    var leftOut: [String: Int] = [:]

    mutating func keep(_ lines: [String], file: String) -> [String] {
        let unique = TrainingText.deduplicated(lines)
        let kept = unique.filter { !overlap.overlaps($0) }
        leftOut[file] = unique.count - kept.count
        return kept
    }

    mutating func keep(_ pairs: [TrainingPair], file: String) -> [TrainingPair] {
        let kept = pairs.filter { !$0.texts.contains(where: overlap.overlaps) }
        leftOut[file] = pairs.count - kept.count
        return kept
    }
}

/// `training/manifest.json`.
public struct TrainingDataManifest: Codable, Equatable {
    public struct File: Codable, Equatable {
        public var lines: Int
        public var sha256: String
    }
    public var revision: Int
    public var seed: UInt64
    public var sources: [String]
    /// File name → line count and SHA-256.
    public var files: [String: File]
    /// Lines (pairs for supervised.jsonl) dropped because they overlap evaluation data.
    public var leftOutForEvaluationOverlap: [String: Int]

    static func read(_ url: URL) throws -> TrainingDataManifest { try JSONDecoder().decode(TrainingDataManifest.self, from: Data(contentsOf: url)) }

    func write(_ url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try writeAtomically(try encoder.encode(self), to: url)
    }
}
