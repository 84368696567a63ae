import Foundation
import UnmaskKernels

/// The kinds of task, with MTEB's protocols.
public enum EvalTaskType: String, Codable, Sendable, CaseIterable {
    case sts, retrieval, clustering, classification

    /// MTEB's main score for the type.
    public var mainScore: String {
        switch self {
        case .sts: return "cosine_spearman"
        case .retrieval: return "ndcg_at_10"
        case .clustering: return "v_measure"
        case .classification: return "accuracy"
        }
    }
}

/// `task.json`: what a task folder holds and how to score it (format version 1; see README.md).
public struct EvalTaskSpec: Codable, Sendable, Equatable {
    public var name: String
    public var type: EvalTaskType
    /// Reporting group: "STS", "Word similarity", "Retrieval", "Clustering", "Classification".
    public var family: String
    public var description: String
    public var source: String
    /// E5/LLM2Vec-style instruction: for retrieval the queries', otherwise every text's. Empty for none.
    public var instruction: String

    public init(name: String, type: EvalTaskType, family: String, description: String, source: String, instruction: String) {
        self.name = name; self.type = type; self.family = family
        self.description = description; self.source = source; self.instruction = instruction
    }
}

/// One text pair with a human similarity score (`pairs.jsonl`).
public struct ScoredPair: Codable, Sendable, Equatable {
    public var sentence1: String
    public var sentence2: String
    public var score: Double
    public init(_ sentence1: String, _ sentence2: String, score: Double) {
        self.sentence1 = sentence1; self.sentence2 = sentence2; self.score = score
    }
}

/// A labelled text (`items.jsonl`); `split` is "train" or "test" for classification, absent for clustering.
public struct LabeledText: Codable, Sendable, Equatable {
    public var text: String
    public var label: String
    public var split: String?
    public init(_ text: String, label: String, split: String? = nil) {
        self.text = text; self.label = label; self.split = split
    }
}

/// A corpus document or a query (`corpus.jsonl`, `queries.jsonl`), BEIR's field names.
public struct IdentifiedText: Codable, Sendable, Equatable {
    public var id: String
    public var text: String
    enum CodingKeys: String, CodingKey { case id = "_id", text }
    public init(id: String, text: String) { self.id = id; self.text = text }
}

/// A relevance judgement (`qrels.jsonl`), BEIR's field names.
public struct RelevanceJudgement: Codable, Sendable, Equatable {
    public var queryId: String
    public var corpusId: String
    public var score: Double
    enum CodingKeys: String, CodingKey { case queryId = "query-id", corpusId = "corpus-id", score }
    public init(queryId: String, corpusId: String, score: Double = 1) {
        self.queryId = queryId; self.corpusId = corpusId; self.score = score
    }
}

/// A task's data, loaded from its folder.
public enum EvalTaskData: Sendable {
    case sts([ScoredPair])
    case retrieval(corpus: [IdentifiedText], queries: [IdentifiedText], qrels: [RelevanceJudgement])
    case clustering([LabeledText])
    case classification([LabeledText])
}

public struct EvalTask: Sendable {
    public var spec: EvalTaskSpec
    public var data: EvalTaskData
    public init(spec: EvalTaskSpec, data: EvalTaskData) { self.spec = spec; self.data = data }

    /// The files a task of `type` holds besides `task.json`.
    public static func files(for type: EvalTaskType) -> [String] {
        switch type {
        case .sts: return ["pairs.jsonl"]
        case .retrieval: return ["corpus.jsonl", "queries.jsonl", "qrels.jsonl"]
        case .clustering, .classification: return ["items.jsonl"]
        }
    }

    /// Loads `<folder>/task.json` and its JSONL files.
    public static func load(folder: URL) throws -> EvalTask {
        let specURL = folder.appendingPathComponent("task.json")
        guard FileManager.default.fileExists(atPath: specURL.path) else {
            throw UnmaskError.fileNotFound(path: specURL.path, what: "task description; run `unmask data prepare` first")
        }
        let spec: EvalTaskSpec
        do { spec = try JSONDecoder().decode(EvalTaskSpec.self, from: Data(contentsOf: specURL)) } catch {
            throw UnmaskError.malformedJSON(file: specURL.path, reason: "\(error)")
        }
        func read<T: Decodable>(_ name: String, as: T.Type) throws -> [T] { try JSONLines.read(folder.appendingPathComponent(name), as: T.self) }
        switch spec.type {
        case .sts: return EvalTask(spec: spec, data: .sts(try read("pairs.jsonl", as: ScoredPair.self)))
        case .retrieval:
            return EvalTask(spec: spec, data: .retrieval(corpus: try read("corpus.jsonl", as: IdentifiedText.self),
                                                         queries: try read("queries.jsonl", as: IdentifiedText.self),
                                                         qrels: try read("qrels.jsonl", as: RelevanceJudgement.self)))
        case .clustering: return EvalTask(spec: spec, data: .clustering(try read("items.jsonl", as: LabeledText.self)))
        case .classification: return EvalTask(spec: spec, data: .classification(try read("items.jsonl", as: LabeledText.self)))
        }
    }

    /// Writes the task into `folder` (created), returning the names of the files written.
    @discardableResult
    public func write(to folder: URL) throws -> [String] {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(spec).write(to: folder.appendingPathComponent("task.json"))
        switch data {
        case let .sts(pairs): try JSONLines.write(pairs, to: folder.appendingPathComponent("pairs.jsonl"))
        case let .retrieval(corpus, queries, qrels):
            try JSONLines.write(corpus, to: folder.appendingPathComponent("corpus.jsonl"))
            try JSONLines.write(queries, to: folder.appendingPathComponent("queries.jsonl"))
            try JSONLines.write(qrels, to: folder.appendingPathComponent("qrels.jsonl"))
        case let .clustering(items), let .classification(items):
            try JSONLines.write(items, to: folder.appendingPathComponent("items.jsonl"))
        }
        return ["task.json"] + Self.files(for: spec.type)
    }

    /// Number of scored units: pairs, queries, or items.
    public var size: Int {
        switch data {
        case let .sts(pairs): return pairs.count
        case let .retrieval(_, queries, _): return queries.count
        case let .clustering(items), let .classification(items): return items.count
        }
    }

    /// A smaller copy for quick runs, sampled reproducibly: STS keeps `limit` pairs; retrieval
    /// `limit` queries and a corpus of their relevant documents plus others up to `2 * limit`;
    /// clustering `limit` items, stratified; classification `limit` test items and a training
    /// pool of `limit` items, both stratified.
    public func limited(to limit: Int?, seed: UInt64 = 42) -> EvalTask {
        guard let limit, limit > 0 else { return self }
        var random = SplitMix64(seed: seed)
        var copy = self
        switch data {
        case let .sts(pairs):
            guard pairs.count > limit else { return self }
            let keep = Array(pairs.indices.shuffled(using: &random).prefix(limit)).sorted()
            copy.data = .sts(keep.map { pairs[$0] })
        case let .retrieval(corpus, queries, qrels):
            guard queries.count > limit || corpus.count > 2 * limit else { return self }
            let keptQueries = queries.count > limit ? Array(queries.indices.shuffled(using: &random).prefix(limit)).sorted().map { queries[$0] } : queries
            let queryIds = Set(keptQueries.map(\.id))
            let keptQrels = qrels.filter { queryIds.contains($0.queryId) }
            var corpusIds = Set(keptQrels.map(\.corpusId))
            for index in corpus.indices.shuffled(using: &random) where corpusIds.count < 2 * limit { corpusIds.insert(corpus[index].id) }
            copy.data = .retrieval(corpus: corpus.filter { corpusIds.contains($0.id) }, queries: keptQueries, qrels: keptQrels)
        case let .clustering(items):
            copy.data = .clustering(Self.stratifiedSample(items, count: limit, random: &random))
        case let .classification(items):
            let train = items.filter { $0.split == "train" }, test = items.filter { $0.split != "train" }
            copy.data = .classification(Self.stratifiedSample(train, count: limit, random: &random)
                + Self.stratifiedSample(test, count: limit, random: &random))
        }
        return copy
    }

    /// `count` items keeping each label's share (at least one of each where possible), in their
    /// original order.
    public static func stratifiedSample(_ items: [LabeledText], count: Int, random: inout SplitMix64) -> [LabeledText] {
        guard items.count > count else { return items }
        var byLabel: [String: [Int]] = [:]
        for (index, item) in items.enumerated() { byLabel[item.label, default: []].append(index) }
        let labels = byLabel.keys.sorted()
        var quota: [String: Int] = [:]
        for label in labels { quota[label] = max(1, Int(Double(count) * Double(byLabel[label]!.count) / Double(items.count))) }
        // Hand out what rounding left over to the largest labels, or take back what the minimum of one added.
        var assigned = quota.values.reduce(0, +)
        for label in labels.sorted(by: { byLabel[$0]!.count > byLabel[$1]!.count }) where assigned != count {
            if assigned < count, quota[label]! < byLabel[label]!.count { quota[label]! += 1; assigned += 1 }
            else if assigned > count, quota[label]! > 1 { quota[label]! -= 1; assigned -= 1 }
        }
        var chosen: [Int] = []
        for label in labels { chosen += byLabel[label]!.shuffled(using: &random).prefix(quota[label]!) }
        return chosen.sorted().map { items[$0] }
    }
}

/// One JSON object a line.
public enum JSONLines {
    public static func read<T: Decodable>(_ url: URL, as: T.Type) throws -> [T] {
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw UnmaskError.fileNotFound(path: url.path, what: "task data; run `unmask data prepare` first")
        }
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw UnmaskError.unreadableFile(path: url.path, reason: error.localizedDescription) }
        let decoder = JSONDecoder()
        var result: [T] = []
        var lineNumber = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) { continue }
            do { result.append(try decoder.decode(T.self, from: Data(line))) } catch {
                throw UnmaskError.malformedJSON(file: "\(url.path):\(lineNumber)", reason: "\(error)")
            }
        }
        return result
    }

    public static func write<T: Encodable>(_ values: [T], to url: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var out = Data()
        for value in values { out.append(try encoder.encode(value)); out.append(UInt8(ascii: "\n")) }
        try out.write(to: url)
    }
}
