import Logging
import Protocol
import RLAIF
import Tensor
import Testing

@testable import Worker

/// Rings of real worker links (ports on their own threads) on loopback, one task per rank.
@Suite(.timeLimit(.minutes(1))) struct RingAllReduceTests {
    /// Eight micro-batch gradients of 1003 elements, magnitudes 1e-6 … 10: most partial sums need
    /// 64 bits, so slices travel as plain units.
    static let gradients = micro { j in Float([1e-6, 1e-3, 1, 10][j % 4]) }

    /// Gradient-like magnitudes (≤ 1e-2) with an outlier of 10 every 50 elements: slices travel
    /// packed, with patches for the outliers.
    static let gradientLike = micro { j in j % 50 == 7 ? 10 : 1e-2 }
    /// Longer than three blocks of a sum (4096 elements each), with outliers in the second only:
    /// narrow and wide blocks meet in the same slices.
    static let blockSpanning = micro(count: 3 * 4096 + 77) { j in (4096..<8192).contains(j) && j % 50 == 7 ? 10 : 1e-2 }

    static func micro(count: Int = 1003, scale: (Int) -> Float) -> [Tensor] {
        (0..<8).map { i in
            var rng = RandomStream(seed: 5, purpose: .scratch, step: 0, index: UInt64(i))
            let t = Tensor.randomNormal([count], rng: &rng)
            for j in 0..<t.count { t[flat: j] *= scale(j) }
            return t
        }
    }

    /// Runs a ring of `size` ranks (each a worker's `RingLink`, bound to `bind`); micro-batch i
    /// goes to rank assignment[i]. Returns every rank's result.
    static func ring(
        size: Int, assignment: [Int], gradients: [Tensor] = gradients, sliceElements: Int = 100,
        timeout: Duration = .seconds(20), bind: String = "tcp://127.0.0.1:*"
    ) async throws -> [Tensor] {
        let links = try (0..<size).map { _ in try RingLink(bind: bind, keyPair: nil, logger: Logger(label: "test")) }
        defer { for l in links { l.close() } }
        var partial = (0..<size).map { _ in ExactSum(count: gradients[0].count) }
        for (micro, rank) in assignment.enumerated() { try partial[rank].add(gradients[micro]) }
        let sums = partial
        return try await withThrowingTaskGroup(of: (Int, Tensor).self) { group in
            for r in 0..<size {
                group.addTask {
                    let ring = RingAllReduce(
                        rank: r, size: size, step: 3, epoch: 1, chunkTimeout: timeout, sliceElements: sliceElements)
                    let next = links[(r + 1) % size].port.address
                    return (r, try await links[r].reduce(ring, sums[r], next: next, key: nil))
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
        // Same-host workers may use Unix sockets (workers.ring_bind: ipc://*): the same bits.
        let overIPC = try await Self.ring(size: 3, assignment: [1, 1, 2, 0, 1, 0, 2, 2], bind: "ipc://*")
        let reference = one[0].checksum
        for t in two + four + three + overIPC { #expect(t.checksum == reference) }
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
        guard case .packed(_, let patches) = direct.partial(0..<1003) else {
            Issue.record("packing did not pay")
            return
        }
        #expect(wide > 15 && patches.count / 2 == wide)
        try await Self.expectRingsEqualOneProcess(direct, Self.gradientLike, sliceElements: sliceElements)
    }

    @Test(arguments: [1000, 1 << 18])
    func sumsWithNarrowAndWideBlocks_reduceToTheSameBitsAsOneProcess(sliceElements: Int) async throws {
        var direct = ExactSum(count: 3 * 4096 + 77)
        for g in Self.blockSpanning { try direct.add(g) }
        let units = direct.units
        let wide = units.indices.filter { Int64(Int32(truncatingIfNeeded: units[$0])) != units[$0] }
        #expect(!wide.isEmpty && wide.allSatisfy { (4096..<8192).contains($0) })
        try await Self.expectRingsEqualOneProcess(direct, Self.blockSpanning, sliceElements: sliceElements)
    }

    static func expectRingsEqualOneProcess(_ direct: ExactSum, _ gradients: [Tensor], sliceElements: Int) async throws {
        let reference = direct.value().checksum
        for (size, assignment) in [
            (2, [0, 1, 1, 0, 0, 1, 1, 0]), (3, [2, 2, 2, 0, 1, 0, 1, 2]), (4, [3, 2, 1, 0, 0, 1, 2, 3]),
        ] {
            let results = try await Self.ring(
                size: size, assignment: assignment, gradients: gradients, sliceElements: sliceElements)
            for t in results { #expect(t.checksum == reference, "ring of \(size), slices of \(sliceElements)") }
        }
    }

    @Test func aMissingRank_failsTheStepWithinTheTimeout() async throws {
        let link = try RingLink(bind: "tcp://127.0.0.1:*", keyPair: nil, logger: Logger(label: "test"))
        let deadPeer = try RingPort(bind: "tcp://127.0.0.1:*")  // never runs its side
        defer {
            link.close()
            deadPeer.close()
        }
        var sum = ExactSum(count: 10)
        try sum.add(Tensor(shape: [10], repeating: 1))
        let ring = RingAllReduce(rank: 0, size: 2, step: 1, epoch: 1, chunkTimeout: .milliseconds(300))
        let start = ContinuousClock.now
        await #expect(throws: RingError.self) { try await link.reduce(ring, sum, next: deadPeer.address, key: nil) }
        #expect(ContinuousClock.now - start < .seconds(5))
        // The port still serves the next reduction, and a closed one fails at once.
        let again = RingAllReduce(rank: 0, size: 2, step: 2, epoch: 1, chunkTimeout: .milliseconds(100))
        await #expect(throws: RingError.self) { try await link.reduce(again, sum, next: deadPeer.address, key: nil) }
        link.close()
        await #expect(throws: RingPortError.closed) {
            try await link.reduce(again, sum, next: deadPeer.address, key: nil)
        }
    }

    @Test func malformedAndStaleInput_isDropped_andThePortKeepsServing() async throws {
        let link = try RingLink(bind: "tcp://127.0.0.1:*", keyPair: nil, logger: Logger(label: "test"))
        defer { link.close() }
        let peer = try ZMQSocket(ZMQContext.shared, .dealer)
        defer { peer.close() }
        try peer.connect(link.port.address)
        // Garbage, then a message that is not a slice, then a slice of an older step than one asked for.
        try peer.send(Array("not a protocol message".utf8))
        try peer.send(Wire.encode(.heartbeat(.init(workerID: 1, sequence: 1))).control)
        #expect(!(await Self.delivered(to: link)))  // asks for step 3: older steps are over
        let stale = Wire.encode(Self.forgedSlice(5, step: 2))
        try peer.send(stale.control, more: true)
        try peer.send(Tensor(shape: [4], repeating: 5).scalars.withUnsafeBytes { Array($0) })
        var staleKey = Self.forgedKey
        staleKey.step = 2
        await #expect(throws: RingPortError.self) {
            try await link.port.run { [staleKey] in try $0.take(staleKey, timeout: .milliseconds(300)) }
        }
        #expect(link.port.drops.byReason["unexpected"] == 1)
        #expect(link.port.drops.total >= 2)
        // A good slice still arrives.
        let good = Wire.encode(Self.forgedSlice(1))
        try peer.send(good.control, more: true)
        try peer.send(Tensor(shape: [4], repeating: 1).scalars.withUnsafeBytes { Array($0) })
        #expect(await Self.delivered(to: link))
    }

    @Test func slicesNobodyAsksFor_waitWithinABoundedBacklog() async throws {
        let port = try RingPort(bind: "tcp://127.0.0.1:*", backlogLimit: 40)  // two slices of 4 floats
        defer { port.close() }
        let peer = try ZMQSocket(ZMQContext.shared, .dealer)
        defer { peer.close() }
        try peer.connect(port.address)
        func send(chunk: UInt32, _ value: Float) throws {
            let slice = Wire.encode(
                .gradientChunk(
                    .init(
                        step: 9, ringEpoch: 1, phase: .allGather, chunkIndex: chunk, fromRank: 1,
                        payload: .values(Tensor(shape: [4], repeating: value)))))
            try peer.send(slice.control, more: true)
            try peer.send(Tensor(shape: [4], repeating: value).scalars.withUnsafeBytes { Array($0) })
        }
        func take(_ chunk: UInt32) async throws -> [Float] {
            let key = RingSlice(step: 9, epoch: 1, phase: .allGather, chunk: chunk, slice: 0)
            let payload = try await port.run { try $0.take(key, timeout: .milliseconds(500)) }
            guard case .values(let t) = payload else { return [] }
            return t.scalars
        }
        for chunk in 0..<3 { try send(chunk: UInt32(chunk), Float(chunk)) }
        // The third is waited for in vain (while all three arrive): it came when two were held.
        await #expect(throws: RingPortError.self) { _ = try await take(2) }
        #expect(port.drops.byReason["backlogFull"] == 1)
        #expect(try await take(0) == [0, 0, 0, 0])
        // Taking made room again.
        try send(chunk: 3, 3)
        #expect(try await take(3) == [3, 3, 3, 3])
        #expect(try await take(1) == [1, 1, 1, 1])
    }

    // MARK: Authenticated links (a cluster with keys)

    /// One slice of chunk 0 of `step`, epoch 1, as a predecessor would send it.
    static func forgedSlice(_ value: Float, step: UInt64 = 3) -> Wire.Message {
        .gradientChunk(
            .init(
                step: step, ringEpoch: 1, phase: .allGather, chunkIndex: 0, fromRank: 1,
                payload: .values(Tensor(shape: [4], repeating: value))))
    }

    static let forgedKey = RingSlice(step: 3, epoch: 1, phase: .allGather, chunk: 0, slice: 0)

    /// The slice of `forgedSlice` (step 3), if `link` gets it within `timeout`.
    static func take(from link: RingLink, timeout: Duration = .milliseconds(500)) async throws -> Wire.ChunkPayload {
        try await link.port.run { try $0.take(forgedKey, timeout: timeout) }
    }

    /// Whether `link` gets the slice of `forgedSlice` (step 3) within half a second.
    static func delivered(to link: RingLink) async -> Bool {
        (try? await take(from: link)) != nil
    }

    @Test func keyedRingListener_takesChunksFromClusterKeysOnly() async throws {
        let member = try CurveKeyPair.generate(), own = try CurveKeyPair.generate()
        let stranger = try CurveKeyPair.generate()
        let logger = Logger(label: "test")

        // Without keys anyone who reaches the port can feed the ring: the test's send path works.
        let open = try RingLink(bind: "tcp://127.0.0.1:*", keyPair: nil, logger: logger)
        let anyone = try Endpoint.connect(to: open.port.address)
        defer {
            anyone.close()
            open.close()
        }
        await anyone.send(Self.forgedSlice(666))
        #expect(await Self.delivered(to: open))

        let keyed = try RingLink(bind: "tcp://127.0.0.1:*", keyPair: own, logger: logger)
        defer { keyed.close() }
        keyed.authorize([member.publicKey, own.publicKey])
        let address = keyed.port.address
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
        #expect((keyed.port.drops.byReason["unauthorized"] ?? 0) >= 1)

        // A cluster member is served, and its slice is the one the port holds.
        let genuine = try Endpoint.connect(
            to: address, security: .curve(client: member, serverPublicKey: own.publicKey))
        defer { genuine.close() }
        await genuine.send(Self.forgedSlice(1))
        let payload = try await Self.take(from: keyed, timeout: .seconds(10))
        guard case .values(let t) = payload else {
            Issue.record("expected float values, got \(payload)")
            return
        }
        #expect(t.scalars == [1, 1, 1, 1])
    }

    @Test func keyedRing_reducesToTheSameBitsAsAnOpenOne() async throws {
        let pairs = try (0..<3).map { _ in try CurveKeyPair.generate() }
        let links = try pairs.map {
            try RingLink(bind: "tcp://127.0.0.1:*", keyPair: $0, logger: Logger(label: "test"))
        }
        defer { for l in links { l.close() } }
        for l in links { l.authorize(pairs.map(\.publicKey)) }
        let assignment = [2, 2, 2, 0, 1, 0, 1, 2]
        var partial = (0..<3).map { _ in ExactSum(count: 1003) }
        for (micro, rank) in assignment.enumerated() { try partial[rank].add(Self.gradients[micro]) }
        let sums = partial
        let results = try await withThrowingTaskGroup(of: Tensor.self) { group in
            for r in 0..<3 {
                group.addTask {
                    let ring = RingAllReduce(
                        rank: r, size: 3, step: 3, epoch: 1, chunkTimeout: .seconds(20), sliceElements: 100)
                    let next = links[(r + 1) % 3]
                    return try await links[r].reduce(
                        ring, sums[r], next: next.port.address, key: pairs[(r + 1) % 3].publicKey)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let reference = try await Self.ring(size: 3, assignment: assignment)[0].checksum
        for t in results { #expect(t.checksum == reference) }
        // Without the successor's key a keyed worker refuses to connect rather than go open.
        let ring = RingAllReduce(rank: 0, size: 3, step: 4, epoch: 1)
        await #expect(throws: JobSpecError.self) {
            try await links[0].reduce(ring, sums[0], next: links[1].port.address, key: nil)
        }
    }
}
