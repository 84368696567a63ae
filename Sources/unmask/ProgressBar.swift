import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A one-line progress bar on stderr, drawn only when stderr is a terminal.
final class ProgressBar {
    private let label: String
    private let total: Int
    /// Whether stderr is a terminal (otherwise nothing is drawn).
    let enabled = isatty(STDERR_FILENO) != 0
    private let start = Date()

    init(label: String, total: Int) {
        self.label = label
        self.total = total
    }

    func update(_ done: Int, detail: String = "") {
        guard enabled, total > 0 else { return }
        let fraction = Double(done) / Double(total)
        let width = 30
        let filled = Int(fraction * Double(width))
        let elapsed = Date().timeIntervalSince(start)
        let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        let line = String(format: "\r%@ %@ %d/%d  %.0f%%  %.1fs elapsed, ETA %.1fs  %@", label, bar, done, total, fraction * 100, elapsed, eta, detail)
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\n".utf8))
    }
}
