/// How an endpoint's socket is set up. Defaults suit coordinator/worker traffic on a LAN.
public struct EndpointSettings: Sendable {
    /// Messages queued per peer before sends fail (ROUTER) or wait (DEALER).
    public var highWaterMark: Int32 = 10_000
    /// How long a DEALER's send may wait on a full queue before the message is dropped and logged.
    public var sendTimeout: Duration = .seconds(5)
    /// What the decoder accepts; libzmq drops any single frame larger than the tensor limit.
    public var limits: WireLimits = .default
    /// Messages queued by callers before `Endpoint.send` waits for the socket thread.
    public var outboxCapacity = 1024
    /// Messages received per wake-up before the loop looks at its outbox again.
    public var receiveBatch = 256

    public init() {}
}
