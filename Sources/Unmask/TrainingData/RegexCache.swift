import Foundation

/// Compiled regular expressions by pattern, so per-line passes do not recompile them.
/// Matching is case-insensitive and `.` matches newlines.
final class RegexCache: @unchecked Sendable {
    static let shared = RegexCache()
    private let lock = NSLock()
    private var compiled: [String: NSRegularExpression] = [:]

    func regex(_ pattern: String) -> NSRegularExpression {
        lock.lock()
        defer { lock.unlock() }
        if let regex = compiled[pattern] { return regex }
        // Every pattern is a literal of this module: one that does not compile is a programming error.
        let regex = try! NSRegularExpression(pattern: pattern, options: [.dotMatchesLineSeparators, .caseInsensitive])
        compiled[pattern] = regex
        return regex
    }
}

extension String {
    /// Every match of `pattern` (case-insensitive, `.` matching newlines) replaced by `template`,
    /// in which `$1` stands for the first group.
    func replacingMatches(of pattern: String, with template: String) -> String {
        RegexCache.shared.regex(pattern).stringByReplacingMatches(in: self, range: NSRange(startIndex..., in: self), withTemplate: template)
    }
}
