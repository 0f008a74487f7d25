import ArgumentParser
import CZmqReference
import Foundation
import Protocol
import Tensor

/// `rlaif-bench protocol`: rlaif's transport (Endpoint, Wire codec) beside the same patterns in C
/// against libzmq directly, interleaved round by round over tcp loopback. Reports the best and the
/// median round of each, since loopback throughput on a shared 2-core machine swings by 2×.
struct ProtocolBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "protocol", abstract: "Transport throughput and latency: rlaif vs raw libzmq (C).")

    @Option(help: "Rounds per pattern.") var rounds = 7
    @Option(help: "16 MB tensor messages per round.") var tensorCount = 150
    @Option(help: "1 KB control messages per round.") var controlCount = 200_000
    @Option(help: "Round trips per round.") var roundTrips = 10_000
    @Flag(help: "Measure rlaif only (for profiling).") var noReference = false
    @Option(help: "Patterns to run: tensor, control, latency.") var patterns: [String] = [
        "tensor", "control", "latency",
    ]

    func run() async throws {
        _ = Engine.shared  // as in a worker process: the engine's allocator settings apply
        let endpoint = "tcp://127.0.0.1:*"
        emit("pattern (tcp loopback)           stat      rlaif       C/libzmq    rlaif/C")
        if patterns.contains("tensor") {
            var ours: [Double] = [], reference: [Double] = []
            for _ in 0..<rounds {
                ours.append(try await tensorThroughput(count: tensorCount))
                reference.append(czmq_reference_throughput(endpoint, 16 << 20, tensorCount, 1) * Double(16 << 20) / 1e9)
            }
            report("16 MB tensors, zero-copy (GB/s)", ours, reference, higherIsBetter: true)
        }
        if patterns.contains("control") {
            var ours: [Double] = [], reference: [Double] = []
            for _ in 0..<rounds {
                ours.append(try await controlThroughput(count: controlCount))
                reference.append(noReference ? 1 : czmq_reference_throughput(endpoint, 1024, controlCount, 0))
            }
            report("1 KB control messages (msg/s)", ours, reference, higherIsBetter: true)
        }
        if patterns.contains("latency") {
            var ours: [Double] = [], reference: [Double] = []
            for _ in 0..<rounds {
                ours.append(try await roundTrip(count: roundTrips))
                reference.append(czmq_reference_round_trip_us(endpoint, 24, roundTrips))
            }
            report("round trip, small message (µs)", ours, reference, higherIsBetter: false)
        }
    }

    func report(_ label: String, _ ours: [Double], _ reference: [Double], higherIsBetter: Bool) {
        func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
        let best: ([Double]) -> Double = higherIsBetter ? { $0.max()! } : { $0.min()! }
        for (stat, f) in [("best", best), ("median", median)] {
            let (o, r) = (f(ours), f(reference))
            let ratio = higherIsBetter ? o / r : r / o
            let l = (stat == "best" ? label : "").padding(toLength: 33, withPad: " ", startingAt: 0)
            emit(
                l + stat.padding(toLength: 7, withPad: " ", startingAt: 0)
                    + String(format: "%12.2f %14.2f %9.1f%%", o, r, 100 * ratio))
        }
    }

    /// A connected pair with the connection established.
    func pair() async throws -> (server: Endpoint, client: Endpoint) {
        let server = try Endpoint.listen(on: "tcp://127.0.0.1:*")
        let client = try Endpoint.connect(to: server.address)
        await client.send(.heartbeat(.init(workerID: 0, sequence: 0, activeJobs: 0)))
        for await _ in server.incoming { break }
        return (server, client)
    }

    /// Seconds from the first send until the receiver holds `count` decoded messages.
    func timeOneWay(count: Int, sendAll: @Sendable (Endpoint) async -> Void) async throws -> Double {
        let (server, client) = try await pair()
        let start = ContinuousClock.now
        let receiver = Task {
            var n = 0
            for await _ in server.incoming {
                n += 1
                if n == count { break }
            }
            return ContinuousClock.now
        }
        await sendAll(client)
        let end = await receiver.value
        client.close()
        server.close()
        return (end - start).seconds
    }

    func tensorThroughput(count: Int) async throws -> Double {
        var rng = RandomStream(seed: 1, purpose: .scratch)
        let tensor = Tensor.randomUniform([4 << 20], rng: &rng)  // 16 MB
        let chunk = Wire.Message.gradientChunk(
            .init(step: 0, ringEpoch: 0, phase: .reduceScatter, chunkIndex: 0, fromRank: 0, data: .float32(tensor)))
        let seconds = try await timeOneWay(count: count) { client in
            for _ in 0..<count { await client.send(chunk) }
        }
        return Double(count) * Double(16 << 20) / seconds / 1e9
    }

    func controlThroughput(count: Int) async throws -> Double {
        // An assignment of 122 item ids: a 1 KB control frame, encoded per message as in real use.
        let items = (0..<122).map { UInt64($0) }
        let seconds = try await timeOneWay(count: count) { client in
            for i in 0..<count {
                await client.send(
                    .assign(
                        .init(
                            jobID: UInt64(i), kind: .rollout, step: 1, attempt: 0, leaseMilliseconds: 1000,
                            weightsVersion: 1, items: items)))
            }
        }
        return Double(count) / seconds
    }

    /// Mean microseconds for a heartbeat to go out and be echoed back.
    func roundTrip(count: Int) async throws -> Double {
        let (server, client) = try await pair()
        let echo = Task {
            for await inbound in server.incoming { await server.send(inbound.message, to: inbound.peer) }
        }
        var replies = client.incoming.makeAsyncIterator()
        var start = ContinuousClock.now
        for i in -100..<count {
            if i == 0 { start = .now }
            await client.send(.heartbeat(.init(workerID: 1, sequence: UInt64(max(i, 0)), activeJobs: 0)))
            _ = await replies.next()
        }
        let elapsed = ContinuousClock.now - start
        client.close()
        server.close()
        _ = await echo.value
        return elapsed.seconds / Double(count) * 1e6
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
