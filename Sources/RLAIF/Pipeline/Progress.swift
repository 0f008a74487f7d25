import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// One line per phase: counts, rate, ETA. On a terminal the line is rewritten in place; otherwise
/// a plain line is printed at most every few seconds and when the phase ends.
public final class Progress: @unchecked Sendable {
    private let phase: String
    private let total: Int
    private let started = Date()
    private var lastPrint = Date.distantPast
    private let interactive: Bool
    private let quiet: Bool

    public init(phase: String, total: Int, quiet: Bool = false) {
        self.phase = phase
        self.total = total
        self.quiet = quiet
        interactive = isatty(STDOUT_FILENO) != 0
    }

    /// `detail` is only built when the line is printed (a step's loss formatted per step costs CPU
    /// that a worker sharing the core would wait for).
    public func update(_ done: Int, _ detail: @autoclosure () -> String = "") {
        guard !quiet else { return }
        let now = Date()
        let finished = done >= total
        guard finished || now.timeIntervalSince(lastPrint) >= (interactive ? 0.2 : 5) else { return }
        lastPrint = now
        let elapsed = now.timeIntervalSince(started)
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let line = String(
            format: "%-10@ %5d/%-5d %7.1f/s  ETA %4.0fs  %@", phase as NSString, done, total, rate, eta,
            detail() as NSString)
        if interactive {
            print("\r\u{1B}[K" + line, terminator: finished ? "\n" : "")
            fflush(nil)
        } else {
            print(line)
        }
    }
}
