import ArgumentParser
import Foundation
import Protocol
import RLAIF

/// `rlaif-bench swarm`: many simulated workers in one process and one thread — a DEALER each,
/// speaking the real protocol (hello, heartbeats, results) and answering every labeling job at
/// once with a fixed verdict, so what is measured on the other side is the coordinator alone.
struct SimulatedWorkers: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "swarm", abstract: "Simulated workers for `rlaif-bench coordinator` (not run by hand).")

    @Option(help: "The coordinator's address.") var connect: String
    @Option(help: "Simulated workers.") var workers = 64
    @Option(help: "Heartbeat interval, milliseconds.") var heartbeatMs = 250

    func run() throws {
        let context = ZMQContext(ioThreads: 2)
        var sockets: [ZMQSocket] = []
        for i in 0..<workers {
            let s = try ZMQSocket(context, .dealer)
            try s.connect(connect)
            sockets.append(s)
            let hello = Wire.Hello(
                workerName: "sim-\(i)", host: "swarm", pid: UInt32(getpid()), threads: 1,
                incarnation: UInt64.random(in: 1...UInt64.max))
            try s.sendMultipart([Wire.encode(.hello(hello)).control])
        }
        var ids = [UInt32?](repeating: nil, count: workers)
        var sequence: UInt64 = 0
        var lastBeat = ContinuousClock.now
        let items = sockets.map { ZMQPoll.Item.socket($0) }
        while getppid() != 1 {  // ends with the bench that started it
            let ready = try ZMQPoll.readable(items, timeout: .milliseconds(5))
            for (i, readable) in ready.enumerated() where readable {
                while let frames = try? sockets[i].receiveMultipart(dontWait: true) {
                    guard let message = try? Wire.decode(frames) else { continue }
                    switch message {
                    case .welcome(let w): ids[i] = w.workerID
                    case .assign(let a):
                        guard let id = ids[i] else { continue }
                        let result = Self.answer(a, worker: id)
                        try sockets[i].sendMultipart([Wire.encode(.result(result)).control])
                    case .shutdown: return
                    default: break
                    }
                }
            }
            if ContinuousClock.now - lastBeat >= .milliseconds(heartbeatMs) {
                lastBeat = ContinuousClock.now
                sequence += 1
                for (i, id) in ids.enumerated() {
                    guard let id else { continue }
                    let beat = Wire.encode(.heartbeat(.init(workerID: id, sequence: sequence))).control
                    try? sockets[i].sendMultipart([beat], dontWait: true)
                }
            }
        }
    }

    /// A labeling job's answer: every pair judged 0.6 for the first response in both orders.
    static func answer(_ a: Wire.Assign, worker: UInt32) -> Wire.Result {
        guard a.kind == .labeling, case .labeling(let spec)? = try? Job(kind: a.kind, body: a.body) else {
            return .init(
                jobID: a.jobID, attempt: a.attempt, workerID: worker, status: .failed, message: "not simulated")
        }
        let labels = spec.pairs.map { pair in
            PreferenceLabel(
                pairID: pair.id, forward: 0.6, backward: 0.6, probabilityA: 0.6, status: .valid, rationales: [],
                retries: 0)
        }
        return .init(
            jobID: a.jobID, attempt: a.attempt, workerID: worker, status: .succeeded,
            body: JobOutput.preferences(labels).wireBody)
    }
}
