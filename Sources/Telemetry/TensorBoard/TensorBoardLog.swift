import RLAIF
import Foundation

/// `RUN_DIR/tensorboard/events.out.tfevents.*`: the run's events as TensorBoard scalars and text.
/// The file is a projection of metrics.jsonl: a resumed run writes a new one from the lines it
/// keeps, so each step appears once, as in the log.
public final class TensorBoardLog: RunObserver, @unchecked Sendable {
    private let file: EventFile
    private var projection = TensorBoardProjection()
    private let lock = NSLock()

    /// `settings` (the run's configuration as JSON) is shown as text at step 0.
    public init(runDirectory: URL, settings: String) throws {
        let directory = runDirectory.appendingPathComponent("tensorboard")
        // Earlier files of this run are replaced by the replay (TensorBoard would show both).
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        where name.hasPrefix("events.out.tfevents.") && name.hasSuffix(".rlaif") {
            try? FileManager.default.removeItem(at: directory.appendingPathComponent(name))
        }
        file = try EventFile(directory: directory)
        let indented = settings.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }
        write(
            [.init(tag: "run/settings", step: 0, value: .text(indented.joined(separator: "\n")))],
            wallTime: Date().timeIntervalSince1970)
    }

    public func replay(_ lines: [RunEventLine]) {
        let now = Date().timeIntervalSince1970, last = lines.last?.time ?? 0
        lock.withLock {
            for line in lines {
                write(projection.points(for: line.event), wallTime: now - max(0, last - line.time))
            }
        }
    }

    public func observe(_ line: RunEventLine) {
        lock.withLock { write(projection.points(for: line.event), wallTime: Date().timeIntervalSince1970) }
    }

    public func close() { lock.withLock { file.close() } }

    private func write(_ points: [TensorBoardProjection.Point], wallTime: Double) {
        guard !points.isEmpty else { return }
        let events = points.map { point in
            var event = Tensorflow_Event()
            event.wallTime = wallTime
            event.step = point.step
            var value = Tensorflow_Summary.Value()
            value.tag = point.tag
            switch point.value {
            case .scalar(let x):
                value.simpleValue = Float(x)
            case .text(let markdown):
                value.metadata.pluginData.pluginName = "text"
                value.tensor.dtype = .dtString
                value.tensor.tensorShape = Tensorflow_TensorShapeProto()
                value.tensor.stringVal = [Data(markdown.utf8)]
            }
            event.summary.value = [value]
            return event
        }
        try? file.write(events)  // a full disk loses curves, never the run
    }
}
