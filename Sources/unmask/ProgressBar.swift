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

    /// `total` overrides the one given at the start (nil: unknown, no bar and no ETA).
    func update(_ done: Int, total: Int?, detail: String) {
        guard enabled else { return }
        guard let total, total > 0 else {
            let line = String(format: "\r%@ %d  %.1fs elapsed  %@", label, done, Date().timeIntervalSince(start), detail)
            FileHandle.standardError.write(Data(line.utf8))
            return
        }
        let fraction = Double(done) / Double(total)
        let width = 30
        let filled = Int(fraction * Double(width))
        let elapsed = Date().timeIntervalSince(start)
        let eta = done > 0 ? elapsed / Double(done) * Double(total - done) : 0
        let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
        let line = String(format: "\r%@ %@ %d/%d  %.0f%%  %@ elapsed, ETA %@  %@", label, bar, done, total, fraction * 100,
                          Self.duration(elapsed), Self.duration(eta), detail)
        FileHandle.standardError.write(Data(line.utf8))
    }

    /// 42s, 3m 05s, 2h 07m.
    static func duration(_ seconds: Double) -> String {
        let s = Int(seconds.rounded())
        if s < 60 { return String(format: "%.1fs", seconds) }
        if s < 3600 { return String(format: "%dm %02ds", s / 60, s % 60) }
        return String(format: "%dh %02dm", s / 3600, s % 3600 / 60)
    }

    func update(_ done: Int, detail: String = "") { update(done, total: total, detail: detail) }

    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\n".utf8))
    }
}
