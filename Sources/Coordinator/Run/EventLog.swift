import Foundation

/// `metrics.jsonl`: one JSON object per line — steps with their metrics, jobs and the worker that
/// did each, workers joining and leaving, phase boundaries. Lines are flushed as written, so
/// `rlaif status` and `tail -f` see a live run.
public final class EventLog: @unchecked Sendable {
    private let handle: FileHandle?
    private let lock = NSLock()
    private let start = Date()

    /// Appends to `url` (created when missing); nil logs nowhere (tests of the scheduler alone).
    /// `truncatingTo` first cuts the file to that many bytes: a resumed run drops what was logged
    /// after its checkpoint, so every step appears once.
    public init(url: URL?, truncatingTo length: UInt64? = nil) throws {
        if let url {
            if !FileManager.default.fileExists(atPath: url.path) {
                _ = FileManager.default.createFile(atPath: url.path, contents: nil)  // FileHandle below reports failure
            }
            let h = try FileHandle(forWritingTo: url)
            if let length, length <= (try h.seekToEnd()) { try h.truncate(atOffset: length) }
            h.seekToEndOfFile()
            handle = h
        } else {
            handle = nil
        }
    }

    private let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }()

    public func record(_ event: RunEvent) {
        guard let handle else { return }
        let time = (Date().timeIntervalSince(start) * 1000).rounded() / 1000
        lock.lock()
        defer { lock.unlock() }
        guard let data = try? encoder.encode(RunEventLine(event, time: time)) else { return }
        handle.write(data + Data("\n".utf8))
    }

    /// Bytes written so far (the file's length).
    public var offset: UInt64 {
        lock.lock()
        defer { lock.unlock() }
        return handle?.offsetInFile ?? 0
    }

    public func close() {
        lock.lock()
        defer { lock.unlock() }
        try? handle?.close()
    }
}
