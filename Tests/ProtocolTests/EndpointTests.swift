import CZeroMQ
import Foundation
import Logging
import Synchronization
import Tensor
import Testing

@testable import Protocol

/// Real sockets on loopback: a listening endpoint, well-behaved endpoint clients, and raw libzmq
/// peers that misbehave.
@Suite(.timeLimit(.minutes(1))) struct EndpointTests {
    static let hello = Wire.Message.hello(
        .init(workerName: "w", host: "h", pid: 1, threads: 1, incarnation: 1))

    /// Peers are named in logs by their routing identity's bytes, two lowercase hex digits each.
    @Test func peerID_isWrittenAsTwoHexDigitsAByte() {
        #expect(PeerID([0x00, 0x0A, 0x7F, 0xFF]).description == "000a7fff")
        #expect(PeerID([]).description == "")
    }

    /// Answers every hello with a welcome, as the coordinator's registration will.
    static func serveWelcomes(_ server: Endpoint) -> Task<Int, Never> {
        Task {
            var served = 0
            for await inbound in server.incoming {
                if case .hello = inbound.message {
                    served += 1
                    await server.send(
                        .welcome(
                            .init(
                                workerID: UInt32(served), heartbeatIntervalMilliseconds: 100,
                                heartbeatTimeoutMilliseconds: 1000, runName: "t")), to: inbound.peer)
                }
            }
            return served
        }
    }

    /// The first message on `client`, or nil after `timeout`.
    static func first(_ client: Endpoint, within timeout: Duration) async -> Wire.Message? {
        await withTaskGroup(of: Wire.Message?.self) { group in
            group.addTask {
                for await inbound in client.incoming { return inbound.message }
                return nil
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let r = await group.next()!
            group.cancelAll()
            return r
        }
    }

    // MARK: Serving

    @Test func helloGetsWelcome_andTensorsCrossIntact() async throws {
        let server = try Endpoint.listen(on: "tcp://127.0.0.1:*")
        let client = try Endpoint.connect(to: server.address)
        let chunk = Wire.Message.gradientChunk(
            .init(step: 1, ringEpoch: 1, phase: .allGather, chunkIndex: 0, fromRank: 0, payload: .values(Inputs.big)))
        await client.send(chunk)
        var received: Wire.Message?
        for await inbound in server.incoming {
            received = inbound.message
            break
        }
        #expect(received == chunk)
        client.close()
        server.close()
    }

    /// A log handler that keeps its lines, to count what an endpoint logs.
    final class CapturedLog: LogHandler, @unchecked Sendable {
        let lines = Mutex<[String]>([])
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .info
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) { lines.withLock { $0.append("\(event.message)") } }
        var logger: Logger { Logger(label: "test") { _ in self } }
    }

    @Test func garbageFromARawPeer_isDroppedWhileAWellBehavedPeerIsServed() async throws {
        let log = CapturedLog()
        let server = try Endpoint.listen(on: "tcp://127.0.0.1:*", logger: log.logger)
        let serving = Self.serveWelcomes(server)
        // A raw libzmq DEALER that sends random frames, bad versions and oversized claims.
        let context = ZMQContext()
        let raw = try ZMQSocket(context, .dealer)
        try raw.connect(server.address)
        var rng = RandomStream(seed: 5, purpose: .scratch)
        for i in 0..<500 {
            let parts = (0..<(1 + rng.next(below: 3))).map { _ in
                (0..<rng.next(below: 40)).map { _ in UInt8(truncatingIfNeeded: rng.nextUInt32()) }
            }
            try raw.sendMultipart(
                i % 50 == 0 ? [Wire.magic + [UInt8(ProtocolVersion.current.major), 0, 0, 0, 200]] : parts)
        }
        let good = try Endpoint.connect(to: server.address)
        await good.send(Self.hello)
        let reply = await Self.first(good, within: .seconds(10))
        guard case .welcome = reply else {
            Issue.record("well-behaved peer got \(String(describing: reply))")
            return
        }
        // Every garbage message is counted (an empty message is refused as truncated too).
        for _ in 0..<100 where server.drops.total < 500 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(server.drops.total == 500)
        #expect(server.drops.byReason["unknownKind"] == 10)
        // Counted, not logged one by one: one line for the flood (it once wrote 500).
        let dropped = log.lines.withLock { $0.filter { $0.hasPrefix("Dropped message from") } }
        #expect(dropped.count == 1, "\(dropped.count) lines")
        raw.close()
        good.close()
        server.close()
        #expect(await serving.value == 1)
    }

    /// One line per source per interval, the next saying how many went unlogged.
    @Test func dropLog_isOneLinePerSourcePerInterval() {
        var limiter = DropLogLimiter(interval: .seconds(10))
        let t0 = ContinuousClock.now
        #expect(limiter.shouldLog(source: "a", at: t0) == 0)
        #expect(limiter.shouldLog(source: "a", at: t0 + .seconds(1)) == nil)
        #expect(limiter.shouldLog(source: "b", at: t0 + .seconds(1)) == 0)  // each source has its own line
        #expect(limiter.shouldLog(source: "a", at: t0 + .seconds(9)) == nil)
        #expect(limiter.shouldLog(source: "a", at: t0 + .seconds(10)) == 2)
        #expect(limiter.shouldLog(source: "a", at: t0 + .seconds(25)) == 0)
    }

    @Test func peerOfAnotherMajorVersion_isToldWhy() async throws {
        let server = try Endpoint.listen(on: "tcp://127.0.0.1:*")
        let context = ZMQContext()
        let raw = try ZMQSocket(context, .dealer)
        try raw.setTimeouts(send: .seconds(5), receive: .seconds(10))
        try raw.connect(server.address)
        let future = Wire.encode(
            Self.hello, version: ProtocolVersion(major: ProtocolVersion.current.major + 1, minor: 0))
        try raw.send(future.control)
        let reply = try Wire.decode(raw.receiveMultipart())
        guard case .reject(let r) = reply else {
            Issue.record("expected a reject, got \(reply)")
            return
        }
        #expect(r.reason.contains("version"))
        #expect(server.drops.byReason["unsupportedVersion"] == 1)
        raw.close()
        server.close()
    }

    @Test func sendToAPeerThatLeft_isCountedNotFatal() async throws {
        let server = try Endpoint.listen(on: "tcp://127.0.0.1:*")
        server.post(.shutdown(.init(reason: "x")), to: PeerID([0, 1, 2, 3, 4]))
        for _ in 0..<100 where server.drops.total == 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(server.drops.byReason["unroutable"] == 1)
        server.close()
    }

    /// A client that CURVE refused has no peer to send to: it holds its messages instead of
    /// blocking its socket thread on them, closes at once, and counts each as dropped once
    /// `sendTimeout` passes.
    @Test func refusedClient_holdsItsMessages_closesAtOnce_andDropsThemAfterTheTimeout() async throws {
        let serverKeys = try CurveKeyPair.generate(), stranger = try CurveKeyPair.generate()
        let server = try Endpoint.listen(
            on: "tcp://127.0.0.1:*", security: .curve(server: serverKeys, authorized: AuthorizedKeys([])))
        defer { server.close() }
        let refused = ConnectorSecurity.curve(client: stranger, serverPublicKey: serverKeys.publicKey)
        var short = EndpointSettings()
        short.sendTimeout = .milliseconds(300)
        let client = try Endpoint.connect(to: server.address, security: refused, settings: short)
        for _ in 0..<3 {
            await client.send(Self.hello)
            try await Task.sleep(for: .milliseconds(200))
        }
        for _ in 0..<300 where client.drops.total < 2 { try await Task.sleep(for: .milliseconds(10)) }
        #expect((client.drops.byReason["sendFailed"] ?? 0) >= 2, "\(client.drops.byReason)")
        client.close()

        let waiting = try Endpoint.connect(to: server.address, security: refused)  // the default 5 s
        for _ in 0..<3 {
            await waiting.send(Self.hello)
            try await Task.sleep(for: .milliseconds(200))
        }
        let start = ContinuousClock.now
        waiting.close()
        #expect(ContinuousClock.now - start < .seconds(2), "close waited on sends nobody takes")
    }

    // MARK: Keys

    @Test func withKeys_onlyAuthorizedWorkersCanRegister() async throws {
        let serverKeys = try CurveKeyPair.generate()
        let allowed = try CurveKeyPair.generate(), stranger = try CurveKeyPair.generate()
        let server = try Endpoint.listen(
            on: "tcp://127.0.0.1:*",
            security: .curve(server: serverKeys, authorized: AuthorizedKeys([allowed.publicKey])))
        let serving = Self.serveWelcomes(server)

        let intruder = try Endpoint.connect(
            to: server.address, security: .curve(client: stranger, serverPublicKey: serverKeys.publicKey))
        await intruder.send(Self.hello)
        let plain = try Endpoint.connect(to: server.address)  // no CURVE at all
        await plain.send(Self.hello)
        let member = try Endpoint.connect(
            to: server.address, security: .curve(client: allowed, serverPublicKey: serverKeys.publicKey))
        await member.send(Self.hello)

        guard case .welcome = await Self.first(member, within: .seconds(10)) else {
            Issue.record("the authorized worker was not welcomed")
            return
        }
        #expect(await Self.first(intruder, within: .milliseconds(500)) == nil)
        #expect(await Self.first(plain, within: .milliseconds(200)) == nil)
        #expect((server.drops.byReason["unauthorized"] ?? 0) >= 1)
        for e in [intruder, plain, member, server] { e.close() }
        #expect(await serving.value == 1)
    }

    @Test func keyFiles_roundTrip_andMismatchedPairsAreRejected() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rlaif-keys-\(UUID())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let pair = try CurveKeyPair.generate()
        let path = dir.appendingPathComponent("worker.key").path
        try pair.write(to: path)
        #expect(try CurveKeyPair.read(from: path) == pair)
        #expect(try CurveKeyPair.publicKey(fileOrKey: path + ".pub") == pair.publicKey)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let other = try CurveKeyPair.generate()
        #expect(throws: KeyError.self) { try CurveKeyPair(publicKey: other.publicKey, secretKey: pair.secretKey) }
    }
}

enum Inputs {
    /// 1 MB of floats.
    static let big: Tensor = {
        var rng = RandomStream(seed: 1, purpose: .scratch)
        return .randomUniform([512, 512], rng: &rng)
    }()
}

@Suite(.timeLimit(.minutes(1))) struct EndpointBackpressureTests {
    @Test func send_waitsWhenTheOutboxIsFull_andEverythingArrivesInOrder() async throws {
        var settings = EndpointSettings()
        settings.outboxCapacity = 8
        let server = try Endpoint.listen(on: "tcp://127.0.0.1:*")
        let client = try Endpoint.connect(to: server.address, settings: settings)
        let count = 5_000
        let receiver = Task {
            var sequences: [UInt64] = []
            for await inbound in server.incoming {
                if case .heartbeat(let h) = inbound.message { sequences.append(h.sequence) }
                if sequences.count == count { break }
            }
            return sequences
        }
        for i in 0..<count { await client.send(.heartbeat(.init(workerID: 1, sequence: UInt64(i)))) }
        #expect(await receiver.value == (0..<count).map(UInt64.init))
        // One sender: the queue never holds more than the capacity plus the message that filled it.
        #expect(client.outboxPeak <= settings.outboxCapacity + 1)
        client.close()
        server.close()
    }

    @Test func sendAfterClose_isCountedNotLost_silently() async throws {
        let client = try Endpoint.connect(to: "tcp://127.0.0.1:9")  // nothing listens; connect is lazy
        client.close()
        await client.send(.shutdown(.init(reason: "late")))
        #expect(client.drops.byReason["closed"] == 1)
    }
}
