/// How llama.cpp cuts text into words for a byte-level (`tokenizer.ggml.model` = `gpt2`)
/// vocabulary, by `tokenizer.ggml.pre` value.
///
/// llama.cpp applies a list of regular expressions in turn: each one re-splits every piece
/// produced so far into its matches and the stretches between them (HF's `Split` with
/// `Isolated` behavior). The expressions below are the ones llama.cpp runs (`llama-vocab.cpp`),
/// which are not always those of the model's tokenizer.json: the Llama-3 and Qwen2 contractions
/// are spelled with explicit case (`'[sS]` rather than `(?i:'s)`), and `smollm` splits digits
/// before the GPT-2 expression.
struct GGUFPreTokenization: Sendable {
    enum Step: Sendable {
        /// Each `\p{N}` scalar on its own (llama.cpp's `\p{N}` expression).
        case individualDigits
        case pattern(SplitPattern)
        /// An expression run through NSRegularExpression (ICU), written for ICU where
        /// llama.cpp's `std::regex` (ECMAScript) spelling would mean something else.
        case regex(String)
    }

    let steps: [Step]
    /// llama.cpp's `ignore_merges`: a word that is itself a token is not merged.
    let ignoresMerges: Bool
    /// Whether llama.cpp adds a BOS token when `tokenizer.ggml.add_bos_token` is absent.
    let addsBOSByDefault: Bool

    /// Pre-tokenizer values grouped by the splitting they share, in llama.cpp's terms.
    private static let families: [(names: [String], make: @Sendable () -> GGUFPreTokenization)] = [
        (["default"], { GGUFPreTokenization(steps: [
            .regex(#"[\p{P}\$\+<=>\^~\|]+"#), .pattern(.gpt2), .regex(#"\p{N}+"#), .regex("[0-9][0-9][0-9]"),
        ]) }),
        (["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"], {
            GGUFPreTokenization(steps: [.pattern(.llama3ExplicitCase)], ignoresMerges: true, addsBOSByDefault: true)
        }),
        (["dbrx", "smaug-bpe"], { GGUFPreTokenization(steps: [.pattern(.llama3ExplicitCase)]) }),
        (["gpt-2", "phi-2", "gigachat", "a.x-4.0", "mellum", "mpt", "olmo", "jais", "trillion", "granite-docling",
          "exaone4"], { GGUFPreTokenization(steps: [.pattern(.gpt2)]) }),
        (["smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b", "mellum2"], {
            GGUFPreTokenization(steps: [.individualDigits, .pattern(.gpt2)])
        }),
        (["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "stablelm2", "megrez", "hunyuan"], {
            GGUFPreTokenization(steps: [.pattern(.qwen2ExplicitCase)])
        }),
        (["qwen35"], { GGUFPreTokenization(steps: [.regex(
            #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
        )]) }),
        (["falcon"], { GGUFPreTokenization(steps: [
            .regex(#"[\p{P}\$\+<=>\^~\|`]+"#), .pattern(.gpt2), .regex("[0-9][0-9][0-9]"),
        ]) }),
        // Non-ASCII characters are written as ICU escapes so that no editor or tool can
        // normalize them (the ranges include precomposed Greek letters with NFC equivalents).
        (["deepseek-llm"], { GGUFPreTokenization(steps: [
            .regex("[\r\n]"),
            .regex(#"\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]+"#),
            .regex(#"\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+"#),
            // llama.cpp's `\s+$`: in ECMAScript `$` is only the end of the piece, which ICU spells `\z`.
            .regex(#"\s+\z"#),
            .regex(cjk),
            .regex(#"\p{N}+"#),
        ]) }),
        (["deepseek-coder"], { GGUFPreTokenization(steps: [
            .regex("[\r\n]"), .regex(#"\s?\p{L}+"#), .regex(#"\s?\p{P}+"#), .regex(cjk), .individualDigits,
        ]) }),
    ]

    /// DeepSeek's CJK runs (llama.cpp's `[一-龥ࠀ-一가-퟿]+`).
    private static let cjk = #"[\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]+"#

    init(steps: [Step], ignoresMerges: Bool = false, addsBOSByDefault: Bool = false) {
        self.steps = steps
        self.ignoresMerges = ignoresMerges
        self.addsBOSByDefault = addsBOSByDefault
    }

    /// Every `tokenizer.ggml.pre` value understood for `gpt2` vocabularies.
    static let supportedNames: [String] = families.flatMap(\.names)

    /// The splitting for `name`; a missing value means llama.cpp's `default`.
    static func named(_ name: String?) -> GGUFPreTokenization? {
        let name = name ?? "default"
        return families.first { $0.names.contains(name) }?.make()
    }

    /// The HF-style pre-tokenizer: the splits, then GPT-2's byte-to-character mapping.
    func preTokenizer(source: String) throws -> PreTokenizer {
        var parts: [PreTokenizer] = []
        for step in steps {
            switch step {
            case .individualDigits:
                parts.append(.digits(individual: true))
            case .pattern(let pattern):
                parts.append(.split(pattern, .isolated, invert: false))
            case .regex(let expression):
                do {
                    parts.append(.split(.regex(try CompiledRegex(expression)), .isolated, invert: false))
                } catch {
                    throw TokenizerError("\(source): cannot compile the pre-tokenizer expression \(expression)")
                }
            }
        }
        parts.append(.byteLevel(addPrefixSpace: false, useRegex: false))
        return .sequence(parts)
    }
}
