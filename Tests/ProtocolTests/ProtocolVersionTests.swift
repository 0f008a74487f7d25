import Testing

@testable import Protocol

@Suite struct ProtocolVersionTests {
    @Test func linkedLibzmq_isVersion4WithCurve() {
        // CURVE (libsodium) is what authenticated clusters need; Debian's libzmq5 has it.
        #expect(ZeroMQLibrary.version.major == 4)
        #expect(ZeroMQLibrary.hasCurve)
    }

    @Test func compatibility_followsTheMajorVersion() {
        let v = ProtocolVersion(major: 1, minor: 2)
        #expect(v.isCompatible(with: ProtocolVersion(major: 1, minor: 0)))
        #expect(!v.isCompatible(with: ProtocolVersion(major: 2, minor: 2)))
        #expect(ProtocolVersion(major: 1, minor: 0) < v)
        #expect(v.description == "1.2")
    }
}
