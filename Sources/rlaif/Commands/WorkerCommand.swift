import ArgumentParser
import Foundation
import Logging
import Protocol
import Worker

/// `rlaif worker --connect ENDPOINT`: one worker process.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker", abstract: "Run a worker that connects to a coordinator.")

    @Option(help: "The coordinator's endpoint, e.g. tcp://10.0.0.1:5555.")
    var connect: String

    @Option(help: "This worker's CURVE secret key file (from `rlaif keygen`), for clusters with keys.")
    var key: String?

    @Option(help: "The coordinator's public key (Z85 or a key file); required with --key.")
    var coordinatorKey: String?

    @Option(help: "Engine threads (default: all cores).")
    var threads: Int?

    @Option(help: "A name for logs (default: host-pid).")
    var name: String?

    @Option(help: "Where this worker's all-reduce listener binds (default: chosen from the coordinator's address).")
    var ringBind: String?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads).") }
        if (key == nil) != (coordinatorKey == nil) {
            throw ValidationError("--key and --coordinator-key go together.")
        }
    }

    func run() async throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        if let threads { WorkerSettings(threads: threads).configureEngine() }
        var security = ConnectorSecurity.open
        if let key, let coordinatorKey {
            do {
                security = .curve(
                    client: try CurveKeyPair.read(from: key),
                    serverPublicKey: try CurveKeyPair.publicKey(fileOrKey: coordinatorKey))
            } catch {
                throw CommandFailure("cannot use the keys: \(error)")
            }
        }
        let node = WorkerNode(
            options: .init(
                coordinator: connect, name: name ?? "\(ProcessInfo.processInfo.hostName)-\(getpid())",
                security: security, ringBind: ringBind))
        switch try await node.run() {
        case .shutdown(let reason): print("rlaif worker: shut down (\(reason))")
        case .rejected(let reason): throw CommandFailure("the coordinator rejected this worker: \(reason)")
        case .coordinatorLost: throw CommandFailure("lost the coordinator at \(connect)")
        }
    }
}
