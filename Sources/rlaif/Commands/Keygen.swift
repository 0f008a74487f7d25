import ArgumentParser
import Foundation
import Protocol

/// `rlaif keygen [NAME]`: writes a CURVE key pair for a coordinator or a worker.
struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a CURVE key pair: NAME.key (secret, mode 0600) and NAME.key.pub (public).",
        discussion: """
            List the coordinator's secret file under keys.coordinator in cluster.yaml, every
            hand-started worker's .pub file under keys.workers (give each its own .key with --key),
            and the secret file of the workers rlaif launch starts under keys.worker.
            """)

    @Argument(help: "Base name of the key files.")
    var name = "rlaif"

    @Option(help: "Directory for the key files (created if missing).")
    var directory = "keys"

    @Flag(help: "Replace existing key files.")
    var force = false

    func run() throws {
        let dir = URL(fileURLWithPath: directory)
        let path = dir.appendingPathComponent("\(name).key").path
        if FileManager.default.fileExists(atPath: path) && !force {
            throw CommandFailure(
                "\(path) exists; pass --force to replace it (workers holding the old key lose access).")
        }
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        } catch {
            throw CommandFailure("cannot create \(directory): \(error.localizedDescription)")
        }
        do {
            let pair = try CurveKeyPair.generate()
            try pair.write(to: path)
            print("wrote \(path) (secret) and \(path).pub")
            print("public key: \(pair.publicKey)")
        } catch {
            throw CommandFailure(error.message)
        }
    }
}
