import Foundation

/// What else watches a run's events besides metrics.jsonl (TensorBoard files, Prometheus). Calls
/// come in log order, under the log's lock: an observer does little and never blocks.
public protocol RunObserver: AnyObject, Sendable {
    /// The lines a resumed run keeps (metrics.jsonl after its checkpoint's length), before any new one.
    func replay(_ lines: [RunEventLine])
    func observe(_ line: RunEventLine)
    func close()
}

/// `metrics.jsonl`: one JSON object per line — steps with their metrics, jobs and the worker that
/// did each, workers joining and leaving, phase boundaries. Lines are flushed as written, so
/// `rlaif status` and `tail -f` see a live run.
public final class EventLog: @unchecked Sendable {
    private let handle: FileHandle?
    private let lock = NSLock()
    private let start = Date()
    private let observers: [any RunObserver]

    /// Appends to `url` (created when missing); nil logs nowhere (tests of the scheduler alone).
    /// `truncatingTo` first cuts the file to that many bytes: a resumed run drops what was logged
    /// after its checkpoint, so every step appears once.
    public init(url: URL?, truncatingTo length: UInt64? = nil, observers: [any RunObserver] = []) throws {
        self.observers = observers
        if let url {
            if !FileManager.default.fileExists(atPath: url.path) {
                _ = FileManager.default.createFile(atPath: url.path, contents: nil)  // FileHandle below reports failure
            }
            let h = try FileHandle(forWritingTo: url)
            if let length, length <= (try h.seekToEnd()) { try h.truncate(atOffset: length) }
            h.seekToEndOfFile()
            handle = h
            if !observers.isEmpty {
                let kept = try RunEventLine.read(url)
                for o in observers { o.replay(kept) }
            }
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
        let time = (Date().timeIntervalSince(start) * 1000).rounded() / 1000
        let line = RunEventLine(event, time: time)
        lock.lock()
        defer { lock.unlock() }
        for o in observers { o.observe(line) }
        guard let handle, let data = try? encoder.encode(line) else { return }
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
        for o in observers { o.close() }
    }
}
