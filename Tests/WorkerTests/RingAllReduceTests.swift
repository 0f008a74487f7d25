import Logging
import Protocol
import Tensor
import Testing

@testable import Worker

/// Rings of real endpoints on loopback, one task per rank.
@Suite(.timeLimit(.minutes(1))) struct RingAllReduceTests {
    /// Eight micro-batch gradients of 1003 elements, magnitudes 1e-6 … 10: most partial sums need
    /// 64 bits, so slices travel as plain units.
    static let gradients = micro { j in Float([1e-6, 1e-3, 1, 10][j % 4]) }

    /// Gradient-like magnitudes (≤ 1e-2) with an outlier of 10 every 50 elements: slices travel
    /// packed, with patches for the outliers.
    static let gradientLike = micro { j in j % 50 == 7 ? 10 : 1e-2 }

    static func micro(scale: (Int) -> Float) -> [Tensor] {
        (0..<8).map { i in
            var rng = RandomStream(seed: 5, purpose: .scratch, step: 0, index: UInt64(i))
            let t = Tensor.randomNormal([1003], rng: &rng)
            for j in 0..<t.count { t[flat: j] *= scale(j) }
            return t
        }
    }

    /// Runs a ring of `size` ranks; micro-batch i goes to rank assignment[i]. Returns every rank's result.
    static func ring(
        size: Int, assignment: [Int], gradients: [Tensor] = gradients, sliceElements: Int = 100,
        timeout: Duration = .seconds(20)
    ) async throws -> [Tensor] {
        let listeners = try (0..<size).map { _ in try Endpoint.listen(on: "tcp://127.0.0.1:*") }
        let mailboxes = (0..<size).map { _ in ChunkMailbox() }
        let pumps = zip(mailboxes, listeners).map { $0.pump(from: $1) }
        let senders = try (0..<size).map { r in try Endpoint.connect(to: listeners[(r + 1) % size].address) }
        defer {
            for e in senders + listeners { e.close() }
            for p in pumps { p.cancel() }
        }
        var partial = (0..<size).map { _ in ExactSum(count: 1003) }
        for (micro, rank) in assignment.enumerated() { try partial[rank].add(gradients[micro]) }
        let sums = partial
        return try await withThrowingTaskGroup(of: (Int, Tensor).self) { group in
            for r in 0..<size {
                group.addTask {
                    let ring = RingAllReduce(
                        rank: r, size: size, step: 3, epoch: 1, chunkTimeout: timeout, sliceElements: sliceElements)
                    return (r, try await ring.run(sums[r], next: senders[r], mailbox: mailboxes[r]))
                }
            }
            var out = [Tensor?](repeating: nil, count: size)
            for try await (r, t) in group { out[r] = t }
            return out.map { $0! }
        }
    }

    @Test func everyRank_getsTheSameBits_forOneTwoAndFourWorkers() async throws {
        let one = try await Self.ring(size: 1, assignment: Array(repeating: 0, count: 8))
        let two = try await Self.ring(size: 2, assignment: [0, 1, 1, 0, 0, 1, 1, 0])
        let four = try await Self.ring(size: 4, assignment: [3, 2, 1, 0, 0, 1, 2, 3])
        let three = try await Self.ring(size: 3, assignment: [2, 2, 2, 0, 1, 0, 1, 2])
        let reference = one[0].checksum
        for t in two + four + three { #expect(t.checksum == reference) }
        // And it is the sum: check one element against Double arithmetic.
        let exact = Self.gradients.reduce(0.0) { $0 + Double($1[flat: 2]) }
        #expect(abs(Double(one[0][flat: 2]) - exact) < 1e-5)
    }

    @Test(arguments: [1, 100, 1 << 18])
    func packedPartialSums_reduceToTheSameBitsAsOneProcess(sliceElements: Int) async throws {
        var direct = ExactSum(count: 1003)
        for g in Self.gradientLike { try direct.add(g) }
        // Packing pays here: outliers are 1 in 50, below the 1-in-8 limit, and (almost all) need patches.
        let wide = direct.units.filter { Int64(Int32(truncatingIfNeeded: $0)) != $0 }.count
        #expect(wide > 15 && direct.packed(0..<1003).map { $0.patches.count / 2 } == wide)
        let reference = direct.value().checksum
        for (size, assignment) in [(2, [0, 1, 1, 0, 0, 1, 1, 0]), (3, [2, 2, 2, 0, 1, 0, 1, 2]), (4, [3, 2, 1, 0, 0, 1, 2, 3])] {
            let results = try await Self.ring(
                size: size, assignment: assignment, gradients: Self.gradientLike, sliceElements: sliceElements)
            for t in results { #expect(t.checksum == reference, "ring of \(size), slices of \(sliceElements)") }
        }
    }

    @Test func aMissingRank_failsTheStepWithinTheTimeout() async throws {
        let listener = try Endpoint.listen(on: "tcp://127.0.0.1:*")
        let deadPeer = try Endpoint.listen(on: "tcp://127.0.0.1:*")  // never runs its side
        let mailbox = ChunkMailbox()
        let pump = mailbox.pump(from: listener)
        let sender = try Endpoint.connect(to: deadPeer.address)
        defer {
            for e in [sender, listener, deadPeer] { e.close() }
            pump.cancel()
        }
        var sum = ExactSum(count: 10)
        try sum.add(Tensor(shape: [10], repeating: 1))
        let ring = RingAllReduce(rank: 0, size: 2, step: 1, epoch: 1, chunkTimeout: .milliseconds(300))
        let start = ContinuousClock.now
        await #expect(throws: RingError.self) { try await ring.run(sum, next: sender, mailbox: mailbox) }
        #expect(ContinuousClock.now - start < .seconds(5))
    }

    // MARK: Authenticated links (a cluster with keys)

    /// One slice of chunk 0 of step 3, epoch 1, as a predecessor would send it.
    static func forgedSlice(_ value: Float) -> Wire.Message {
        .gradientChunk(
            .init(
                step: 3, ringEpoch: 1, phase: .allGather, chunkIndex: 0, fromRank: 1,
                payload: .values(Tensor(shape: [4], repeating: value))))
    }

    /// Whether `link`'s mailbox gets the slice of `forgedSlice` within half a second.
    static func delivered(to link: RingLink) async -> Bool {
        (try? await link.mailbox.take(step: 3, epoch: 1, phase: .allGather, chunk: 0, slice: 0, timeout: .milliseconds(500)))
            != nil
    }

    @Test func keyedRingListener_takesChunksFromClusterKeysOnly() async throws {
        let member = try CurveKeyPair.generate(), own = try CurveKeyPair.generate()
        let stranger = try CurveKeyPair.generate()
        let logger = Logger(label: "test")

        // Without keys anyone who reaches the port can feed the ring: the test's send path works.
        let open = try RingLink(bind: "tcp://127.0.0.1:*", keyPair: nil, logger: logger)
        let anyone = try Endpoint.connect(to: open.listener.address)
        defer {
            anyone.close()
            open.close()
        }
        await anyone.send(Self.forgedSlice(666))
        #expect(await Self.delivered(to: open))

        let keyed = try RingLink(bind: "tcp://127.0.0.1:*", keyPair: own, logger: logger)
        defer { keyed.close() }
        keyed.authorize([member.publicKey, own.publicKey])
        let address = keyed.listener.address
        var impatient = EndpointSettings()  // these sends never leave: give up on them soon
        impatient.sendTimeout = .milliseconds(100)
        let intruder = try Endpoint.connect(
            to: address, security: .curve(client: stranger, serverPublicKey: own.publicKey), settings: impatient)
        let plain = try Endpoint.connect(to: address, settings: impatient)
        // A member that expects another server key (an impostor listener) never completes either.
        let misdirected = try Endpoint.connect(
            to: address, security: .curve(client: member, serverPublicKey: stranger.publicKey), settings: impatient)
        defer { for e in [intruder, plain, misdirected] { e.close() } }
        for e in [intruder, plain, misdirected] { await e.send(Self.forgedSlice(666)) }
        #expect(!(await Self.delivered(to: keyed)))
        #expect((keyed.listener.drops.byReason["unauthorized"] ?? 0) >= 1)

        // A cluster member is served, and its slice is the one the mailbox holds.
        let genuine = try Endpoint.connect(to: address, security: .curve(client: member, serverPublicKey: own.publicKey))
        defer { genuine.close() }
        await genuine.send(Self.forgedSlice(1))
        let payload = try await keyed.mailbox.take(
            step: 3, epoch: 1, phase: .allGather, chunk: 0, slice: 0, timeout: .seconds(10))
        guard case .values(let t) = payload else {
            Issue.record("expected float values, got \(payload)")
            return
        }
        #expect(t.scalars == [1, 1, 1, 1])
    }

    @Test func keyedRing_reducesToTheSameBitsAsAnOpenOne() async throws {
        let pairs = try (0..<3).map { _ in try CurveKeyPair.generate() }
        let links = try pairs.map { try RingLink(bind: "tcp://127.0.0.1:*", keyPair: $0, logger: Logger(label: "test")) }
        defer { for l in links { l.close() } }
        for l in links { l.authorize(pairs.map(\.publicKey)) }
        let assignment = [2, 2, 2, 0, 1, 0, 1, 2]
        var partial = (0..<3).map { _ in ExactSum(count: 1003) }
        for (micro, rank) in assignment.enumerated() { try partial[rank].add(Self.gradients[micro]) }
        let sums = partial
        let results = try await withThrowingTaskGroup(of: Tensor.self) { group in
            for r in 0..<3 {
                let next = try links[r].successor(links[(r + 1) % 3].listener.address, key: pairs[(r + 1) % 3].publicKey)
                group.addTask {
                    let ring = RingAllReduce(
                        rank: r, size: 3, step: 3, epoch: 1, chunkTimeout: .seconds(20), sliceElements: 100)
                    return try await ring.run(sums[r], next: next, mailbox: links[r].mailbox)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let reference = try await Self.ring(size: 3, assignment: assignment)[0].checksum
        for t in results { #expect(t.checksum == reference) }
        // Without the successor's key a keyed worker refuses to connect rather than go open.
        #expect(throws: (any Error).self) { try links[0].successor(links[1].listener.address, key: nil) }
    }
}
