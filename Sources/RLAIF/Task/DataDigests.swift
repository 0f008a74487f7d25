import Crypto
import Foundation

/// The SHA-256 of each data file a run reads, recorded when the config is read
/// (`task.data_digests`, by the file's dotted key), so that `rlaif resume` refuses data that
/// changed since the run began instead of silently training on other lines.
public enum DataDigests {
    /// The path the settings give for a data file's key; nil for a key that names no data file.
    public static func path(of key: String, in settings: RunSettings) -> String? {
        switch key {
        case "task.prompts": settings.task.prompts
        case "task.demonstrations": settings.task.demonstrations
        case "task.held_out_prompts": settings.task.heldOutPrompts
        case "task.preferences": settings.task.preferences
        case "labeler.few_shot": settings.labeler.fewShot
        default: nil
        }
    }

    /// The SHA-256 of a file's bytes, in hex.
    public static func digest(ofFile path: String) throws -> String {
        let data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        return SHA256.hash(data: data).hex
    }

    /// What changed among the recorded files, as a message for the user; nil when none did.
    public static func change(in settings: RunSettings) -> String? {
        for (key, recorded) in settings.task.dataDigests.map({ ($0.key, $0.sha256) }) {
            guard let path = path(of: key, in: settings) else { continue }
            guard let current = try? digest(ofFile: path) else {
                return
                    "\(key): \(path) cannot be read; the run began with it: restore it, or start a new run with --fresh"
            }
            if current != recorded {
                return "\(key): \(path) changed since the run began (SHA-256 \(current.prefix(12))…, recorded "
                    + "\(recorded.prefix(12))…): restore it, or start a new run with --fresh"
            }
        }
        return nil
    }
}
