import Foundation
import UnmaskKernels

/// One supervised contrastive example (a line of `supervised.jsonl`): a query, the text it
/// should retrieve, a hard negative, and the instruction that goes before the query.
public struct TrainingPair: Codable, Equatable, Sendable {
    public var query: String
    public var positive: String
    public var negative: String
    public var instruction: String?

    public init(query: String, positive: String, negative: String, instruction: String?) {
        self.query = query; self.positive = positive; self.negative = negative; self.instruction = instruction
    }

    public var texts: [String] { [query, positive, negative] }
}

/// Builds supervised pairs from the unlabeled sources, each kind with a hard negative: a text
/// on the same subject that is not the answer.
public enum SupervisedPairs {
    public static let sectionInstruction = "Given a Wikipedia article title and a section heading, retrieve the passage from that section"
    public static let definitionInstruction = "Given a word, retrieve the dictionary definition of its most common sense"
    public static let continuationInstruction = "Given the opening sentence of a news story, retrieve the rest of the story"

    /// Passage length in words: long enough to be about something, short enough for one window.
    static let passageWords = 20...120
    /// Glosses shorter than this ("a genus of moths") say too little to tell senses apart.
    static let definitionMinimumWords = 4

    /// "Title: Heading" → the passage that opens the section; negative: the opening passage of
    /// another section of the same article.
    public static func wikipediaSections(_ articles: [WikiArticle], random: inout SplitMix64) -> [TrainingPair] {
        var pairs: [TrainingPair] = []
        for article in articles {
            let sections = article.sections.compactMap { section -> (heading: String, passage: String)? in
                guard let heading = section.heading, let passage = openingPassage(section.paragraphs) else { return nil }
                return (heading, passage)
            }
            guard sections.count >= 2 else { continue }
            for (index, section) in sections.enumerated() {
                let other = (sections.indices.filter { $0 != index && sections[$0].passage != section.passage }).randomElement(using: &random)
                guard let other else { continue }
                pairs.append(TrainingPair(query: "\(article.title): \(section.heading)", positive: section.passage,
                                          negative: sections[other].passage, instruction: sectionInstruction))
            }
        }
        return pairs
    }

    /// The leading run of well-formed sentences of the first paragraph that has enough of them,
    /// up to `passageWords.upperBound` words.
    static func openingPassage(_ paragraphs: [String]) -> String? {
        for paragraph in paragraphs {
            var passage: [String] = [], words = 0
            for sentence in SentenceSplitter.sentences(in: paragraph) {
                let count = TrainingText.wordCount(sentence)
                guard TrainingText.isWellFormedSentence(sentence), words + count <= passageWords.upperBound else { break }
                passage.append(sentence)
                words += count
            }
            if words >= passageWords.lowerBound { return passage.joined(separator: " ") }
        }
        return nil
    }

    /// A word → the definition of its most frequent sense; negative: the definition of a
    /// co-hyponym (a sense with the same hypernym, or the same head adjective), preferring
    /// senses common enough to be sense-tagged. Words with common senses in more than one part of
    /// speech are skipped (the query would be ambiguous), and so is any pair whose synsets
    /// contain a word of `excludedWords` (the word-similarity tasks' vocabulary).
    public static func wordDefinitions(_ wordnet: WordNetDatabase, excluding excludedWords: Set<String>, count: Int,
                                       random: inout SplitMix64) -> [TrainingPair] {
        let synsets = Dictionary(wordnet.synsets.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var children: [WordNetSynset.ID: [WordNetSynset.ID]] = [:]
        for synset in wordnet.synsets { for parent in synset.parents { children[parent, default: []].append(synset.id) } }
        let common = wordnet.taggedSynsets
        // A lemma's most frequent sense, where it is sense-tagged at all.
        let mostFrequentSenses = wordnet.index.filter { $0.taggedSenseCount > 0 && !$0.senses.isEmpty }
        var partsOfSpeech: [String: Int] = [:]
        for entry in mostFrequentSenses { partsOfSpeech[entry.lemma.lowercased(), default: 0] += 1 }

        func isUsable(_ synset: WordNetSynset) -> Bool {
            guard let definition = synset.definitions.first, TrainingText.wordCount(definition) >= definitionMinimumWords else { return false }
            return !synset.lemmas.contains { excludedWords.contains($0.lowercased()) }
        }
        var pairs: [TrainingPair] = []
        for entry in mostFrequentSenses.shuffled(using: &random) where pairs.count < count {
            let word = entry.lemma.lowercased()
            guard partsOfSpeech[word] == 1, !excludedWords.contains(word), let synset = synsets[entry.senses[0]], isUsable(synset) else { continue }
            let siblings = synset.parents.flatMap { children[$0] ?? [] }.compactMap { synsets[$0] }.filter {
                $0.id != synset.id && isUsable($0) && !$0.lemmas.contains { $0.lowercased() == word }
                    && $0.definitions.first != synset.definitions.first
            }
            let preferred = siblings.filter { common.contains($0.id) }
            guard let negative = (preferred.isEmpty ? siblings : preferred).randomElement(using: &random) else { continue }
            pairs.append(TrainingPair(query: entry.lemma, positive: synset.definitions[0], negative: negative.definitions[0],
                                      instruction: definitionInstruction))
        }
        return pairs
    }

    /// Stories sharing more of their content words than this are copies of one report (the Lee
    /// background corpus has a few), whose openings would be false negatives.
    static let nearDuplicateSimilarity = 0.5

    /// A story's first sentence → the rest of its opening; negative: the opening of the story
    /// that shares the most content words with it without being a copy (another report of the
    /// same event, or the same kind of event).
    public static func newsContinuations(_ stories: [String]) -> [TrainingPair] {
        let split = stories.map { story -> (lead: String, rest: String)? in
            let sentences = SentenceSplitter.sentences(in: story)
            guard let lead = sentences.first, TrainingText.isWellFormedSentence(lead),
                  let rest = openingPassage([sentences.dropFirst().joined(separator: " ")]) else { return nil }
            return (lead, rest)
        }
        let vocabularies = stories.map(contentWords)
        return stories.indices.compactMap { index -> TrainingPair? in
            guard let story = split[index] else { return nil }
            let similarities = stories.indices.map { jaccard(vocabularies[index], vocabularies[$0]) }
            let nearest = stories.indices.filter { $0 != index && split[$0] != nil && similarities[$0] < nearDuplicateSimilarity }
                .max { similarities[$0] < similarities[$1] }
            guard let nearest else { return nil }
            return TrainingPair(query: story.lead, positive: story.rest, negative: split[nearest]!.rest, instruction: continuationInstruction)
        }
    }

    /// Lowercased words of four letters or more: a cheap stand-in for content words.
    static func contentWords(_ text: String) -> Set<String> {
        Set(text.lowercased().split(whereSeparator: { !$0.isLetter }).filter { $0.count >= 4 }.map(String.init))
    }

    static func jaccard(_ a: Set<String>, _ b: Set<String>) -> Double {
        let union = a.union(b).count
        return union == 0 ? 0 : Double(a.intersection(b).count) / Double(union)
    }
}
