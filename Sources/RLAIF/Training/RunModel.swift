import Crypto
import Foundation
import Models
import Tensor

/// Where a run's models come from and which tokenizer it speaks: a fresh byte-level GPT-2 of the
/// configured shape, or the Hugging Face directory `model.init` names (any architecture rlaif
/// reads) with its own tokenizer. Every replica and the coordinator build it from the settings.
public struct RunModel: Sendable {
    public let tokenizer: any Tokenizer
    /// The checkpoint the run starts from; nil for a fresh model.
    public let initDirectory: URL?
    let scratch: GPT2Config

    public init(settings: RunSettings) throws(ModelError) {
        scratch = settings.gpt2Config
        guard !settings.model.initDirectory.isEmpty else {
            tokenizer = ByteTokenizer()
            initDirectory = nil
            return
        }
        let url = URL(fileURLWithPath: settings.model.initDirectory)
        tokenizer = try ModelDirectory.tokenizer(at: url)
        initDirectory = url
    }

    /// The starting policy: the checkpoint's weights, or GPT-2's initialization from `seed`.
    /// A checkpoint whose files no longer match `expectedDigest` is refused.
    public func policy(seed: UInt64, expectedDigest: String) throws -> any CausalLanguageModel {
        guard let initDirectory else { return try GPT2(config: scratch, seed: seed) }
        try verify(expectedDigest: expectedDigest)
        return try ModelDirectory(initDirectory.path).model
    }

    /// Throws when the checkpoint's files no longer have the digest the run recorded (a
    /// coordinator checks before any worker starts; each replica checks again where it loads).
    public func verify(expectedDigest: String) throws {
        guard let initDirectory, !expectedDigest.isEmpty else { return }
        let digest = try Self.digest(of: initDirectory)
        guard digest == expectedDigest else {
            throw ModelError(
                message:
                    "\(initDirectory.path) changed since the run began (SHA-256 \(digest.prefix(12))…, recorded "
                    + "\(expectedDigest.prefix(12))…): restore that checkpoint, or start a new run with --fresh")
        }
    }

    /// Parameters of one policy, from `model.init`'s config.json alone (no tokenizer, no weights).
    public static func parameterCount(_ settings: RunSettings) throws(ModelError) -> Int {
        try shape(settings).parameterCount
    }

    /// The policy's shape: `model.init`'s config.json, or the fresh GPT-2 the settings describe.
    public static func shape(_ settings: RunSettings) throws(ModelError) -> ModelShape {
        guard !settings.model.initDirectory.isEmpty else { return ModelShape(settings.gpt2Config) }
        return try ModelDirectory.shape(at: URL(fileURLWithPath: settings.model.initDirectory))
    }

    /// SHA-256 over a directory's regular files in name order: each name, a zero byte, its length
    /// and its bytes.
    public static func digest(of directory: URL) throws -> String {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        var hash = SHA256()
        for name in names {
            let url = directory.appendingPathComponent(name)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), !isDirectory.boolValue
            else { continue }
            let data = try Data(contentsOf: url, options: .alwaysMapped)
            hash.update(data: Data(name.utf8) + [0])
            withUnsafeBytes(of: UInt64(data.count).littleEndian) { hash.update(bufferPointer: $0) }
            hash.update(data: data)
        }
        return hash.finalize().hex
    }
}
