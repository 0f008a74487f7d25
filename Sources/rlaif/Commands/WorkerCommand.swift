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

    @Option(
        help:
            "The coordinator's public key (Z85 or a key file); required with --key. A Z85 key that begins with '-' goes as --coordinator-key=KEY."
    )
    var coordinatorKey: String?

    @Option(help: "Engine threads (default: all cores).")
    var threads: Int?

    @Option(help: "A name for logs (default: host-pid).")
    var name: String?

    @Option(help: "Where this worker's all-reduce listener binds (default: chosen from the coordinator's address).")
    var ringBind: String?

    @Option(
        help:
            "on: ring slices to a worker on this host go through shared memory (the ranks must share /proc); located: the same, each slice read once its location comes through the socket (for comparison); off: sockets only."
    )
    var ringSharedMemory: RingSharedMemory = .on

    @Option(
        help:
            "both: rollouts, labeling and gradient steps; rollout: rollouts, scores and labeling (no optimizer state); train: gradient steps only."
    )
    var role: Wire.WorkerRole = .both

    @Option(help: "Seconds to wait for the coordinator to answer before giving up.")
    var registrationWait = 60

    @Option(
        help:
            "trace, debug (each gradient step's compute, all-reduce and update times), info, notice, warning, error or critical."
    )
    var logLevel: Logger.Level = .info

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads).") }
        if registrationWait < 1 {
            throw ValidationError("--registration-wait must be at least 1, got \(registrationWait).")
        }
        if (key == nil) != (coordinatorKey == nil) {
            throw ValidationError("--key and --coordinator-key go together.")
        }
    }

    /// A Slurm task's worker is named by its job and task (`slurm-42-1`), any other by host and pid.
    static func defaultName(_ environment: [String: String]) -> String {
        if let job = environment["SLURM_JOB_ID"], let task = environment["SLURM_PROCID"] {
            return "slurm-\(job)-\(task)"
        }
        return "\(ProcessInfo.processInfo.hostName)-\(getpid())"
    }

    func run() async throws {
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
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
                coordinator: connect, name: name ?? Self.defaultName(ProcessInfo.processInfo.environment),
                security: security, ringBind: ringBind, ringSharedMemory: ringSharedMemory != .off,
                ringDoorbell: ringSharedMemory == .on,
                registrationWait: .seconds(registrationWait), role: role))
        switch try await node.run() {
        case .shutdown(let reason): print("rlaif worker: shut down (\(reason))")
        case .rejected(let reason): throw CommandFailure("the coordinator rejected this worker: \(reason)")
        case .noAnswer where key != nil:
            throw CommandFailure(
                "the coordinator at \(connect) did not answer within \(registrationWait) s: is this worker's public "
                    + "key listed in keys.workers, and is --coordinator-key the coordinator's public key?")
        case .noAnswer:
            throw CommandFailure(
                "the coordinator at \(connect) did not answer within \(registrationWait) s: is it running, reachable "
                    + "from this host, and open (a cluster with keys needs --key and --coordinator-key)?")
        case .coordinatorLost: throw CommandFailure("lost the coordinator at \(connect)")
        }
    }
}

extension Wire.WorkerRole: ExpressibleByArgument {}
extension Logger.Level: @retroactive ExpressibleByArgument {}

enum RingSharedMemory: String, ExpressibleByArgument {
    case on, located, off
}
