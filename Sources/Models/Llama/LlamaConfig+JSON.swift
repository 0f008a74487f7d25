import Foundation

/// Reading `config.json`: each key checked by name, and a component rlaif does not implement
/// refused by name rather than run differently.
extension LlamaConfig {
    public static func read(_ url: URL) throws(ModelError) -> LlamaConfig {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ModelError(message: "\(url.path): cannot be read: \(error.localizedDescription)")
        }
        return try parse(data, file: url.path)
    }

    // size: one key per line
    public static func parse(_ data: Data, file: String = "config.json") throws(ModelError) -> LlamaConfig {
        guard let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw ModelError(message: "\(file): not a JSON object")
        }
        let keys = JSONKeys(json: json, file: file)
        let type = try keys.string("model_type")
        guard let family = Family(rawValue: type) else {
            throw ModelError(
                message: "\(file): model_type \(type) is not one rlaif reads (gpt2, "
                    + Family.allCases.map(\.rawValue).joined(separator: ", ") + ")")
        }
        if let act = try keys.optionalString("hidden_act"), act != "silu" {
            throw ModelError(message: "\(file): hidden_act \(act) is not supported (only silu)")
        }
        let heads = try keys.int("num_attention_heads"), width = try keys.int("hidden_size")
        let layers = try keys.int("num_hidden_layers")
        var config = LlamaConfig(
            family: family, vocabularySize: try keys.int("vocab_size"), width: width,
            intermediateSize: try keys.int("intermediate_size"), layers: layers, heads: heads,
            kvHeads: try keys.optionalInt("num_key_value_heads") ?? heads,
            headDim: try keys.optionalInt("head_dim") ?? width / max(heads, 1),
            contextLength: try keys.optionalInt("max_position_embeddings") ?? 2048,
            rmsNormEpsilon: Float(try keys.optionalDouble("rms_norm_eps") ?? 1e-6),
            tiedEmbeddings: try keys.optionalBool("tie_word_embeddings") ?? false)
        (config.ropeTheta, config.ropeScaling) = try rope(keys)
        if family == .llama {
            config.qkvBias = try keys.optionalBool("attention_bias") ?? false
            config.outputBias = config.qkvBias
            config.mlpBias = try keys.optionalBool("mlp_bias") ?? false
        }
        config.slidingWindows = try windows(keys, family: family, layers: layers)
        config.source = data
        try config.validate()
        return config
    }

    /// θ and the scaling, from `rope_parameters` (transformers 5) or `rope_theta` + `rope_scaling`.
    private static func rope(_ keys: JSONKeys) throws(ModelError) -> (Float, RopeScaling) {
        var parameters = try keys.optionalObject("rope_parameters")
        if parameters == nil { parameters = try keys.optionalObject("rope_scaling") }
        var givenTheta = try parameters?.optionalDouble("rope_theta")
        if givenTheta == nil { givenTheta = try keys.optionalDouble("rope_theta") }
        let theta = Float(givenTheta ?? 10_000)
        guard let parameters else { return (theta, .none) }
        var kind = try parameters.optionalString("rope_type")
        if kind == nil { kind = try parameters.optionalString("type") }
        switch kind ?? "default" {
        case "default": return (theta, .none)
        case "linear": return (theta, .linear(factor: Float(try parameters.double("factor"))))
        case "llama3":
            let scaling = RopeScaling.llama3(
                factor: Float(try parameters.double("factor")),
                lowFrequencyFactor: Float(try parameters.double("low_freq_factor")),
                highFrequencyFactor: Float(try parameters.double("high_freq_factor")),
                originalContext: try parameters.int("original_max_position_embeddings"))
            return (theta, scaling)
        case let other:
            throw ModelError(
                message: "\(keys.file): rope type \(other) is not supported (default, linear and llama3 are)")
        }
    }

    /// Per-layer windows: `layer_types` where given, else Mistral's `sliding_window` on every layer,
    /// or Qwen2's from `max_window_layers` on when `use_sliding_window`.
    private static func windows(_ keys: JSONKeys, family: Family, layers: Int) throws(ModelError) -> [Int?] {
        let window = try keys.optionalInt("sliding_window")
        if let types = keys.json["layer_types"] as? [String] {
            guard types.count == layers else {
                throw ModelError(message: "\(keys.file): layer_types has \(types.count) entries for \(layers) layers")
            }
            var out: [Int?] = []
            for t in types {
                switch t {
                case "full_attention": out.append(nil)
                case "sliding_attention":
                    guard let window else {
                        throw ModelError(message: "\(keys.file): sliding_attention layers need sliding_window")
                    }
                    out.append(window)
                default: throw ModelError(message: "\(keys.file): layer type \(t) is not supported")
                }
            }
            return out
        }
        switch family {
        case .llama: return Array(repeating: nil, count: layers)
        case .mistral: return Array(repeating: window, count: layers)
        case .qwen2:
            guard try keys.optionalBool("use_sliding_window") ?? false, let window else {
                return Array(repeating: nil, count: layers)
            }
            let first = try keys.optionalInt("max_window_layers") ?? layers
            return (0..<layers).map { $0 >= first ? window : nil }
        }
    }

    /// The `config.json` to save: the checkpoint's own (its dtype now Float32), or one built from
    /// this config in transformers 5's form.
    public func jsonObject() -> [String: Any] {
        if let source, var json = (try? JSONSerialization.jsonObject(with: source)) as? [String: Any] {
            if json["torch_dtype"] != nil { json["torch_dtype"] = "float32" }
            if json["dtype"] != nil { json["dtype"] = "float32" }
            return json
        }
        var rope: [String: Any] = ["rope_theta": Double(ropeTheta), "rope_type": "default"]
        switch ropeScaling {
        case .none: break
        case .linear(let factor): rope.merge(["rope_type": "linear", "factor": Double(factor)]) { $1 }
        case .llama3(let factor, let low, let high, let original):
            rope.merge([
                "rope_type": "llama3", "factor": Double(factor), "low_freq_factor": Double(low),
                "high_freq_factor": Double(high), "original_max_position_embeddings": original,
            ]) { $1 }
        }
        var json: [String: Any] = [
            "architectures": [family.architecture], "model_type": family.rawValue, "vocab_size": vocabularySize,
            "hidden_size": width, "intermediate_size": intermediateSize, "num_hidden_layers": layers,
            "num_attention_heads": heads, "num_key_value_heads": kvHeads, "head_dim": headDim,
            "max_position_embeddings": contextLength, "rms_norm_eps": Double(rmsNormEpsilon), "hidden_act": "silu",
            "rope_parameters": rope, "tie_word_embeddings": tiedEmbeddings, "dtype": "float32",
        ]
        if family == .llama {
            json["attention_bias"] = qkvBias
            json["mlp_bias"] = mlpBias
        }
        if let window = slidingWindows.compactMap({ $0 }).first { json["sliding_window"] = window }
        return json
    }
}

/// Typed reads of a JSON object's keys, each error naming the file and key.
struct JSONKeys {
    let json: [String: Any]
    let file: String

    private func present(_ key: String) -> Any? {
        guard let value = json[key], !(value is NSNull) else { return nil }
        return value
    }
    private func wrong(_ key: String, _ expected: String) -> ModelError {
        ModelError(message: "\(file): \(key) must be \(expected), got \(json[key].map { "\($0)" } ?? "nothing")")
    }

    func optionalString(_ key: String) throws(ModelError) -> String? {
        guard let value = present(key) else { return nil }
        guard let s = value as? String else { throw wrong(key, "a string") }
        return s
    }
    func string(_ key: String) throws(ModelError) -> String {
        guard let s = try optionalString(key) else { throw wrong(key, "a string") }
        return s
    }
    func optionalDouble(_ key: String) throws(ModelError) -> Double? {
        guard let value = present(key) else { return nil }
        guard let n = value as? NSNumber else { throw wrong(key, "a number") }
        return n.doubleValue
    }
    func double(_ key: String) throws(ModelError) -> Double {
        guard let d = try optionalDouble(key) else { throw wrong(key, "a number") }
        return d
    }
    func optionalInt(_ key: String) throws(ModelError) -> Int? {
        guard let d = try optionalDouble(key) else { return nil }
        guard d == d.rounded(), abs(d) < 1e15 else { throw wrong(key, "an integer") }
        return Int(d)
    }
    func int(_ key: String) throws(ModelError) -> Int {
        guard let i = try optionalInt(key) else { throw wrong(key, "an integer") }
        return i
    }
    func optionalBool(_ key: String) throws(ModelError) -> Bool? {
        guard let value = present(key) else { return nil }
        guard let b = value as? Bool else { throw wrong(key, "true or false") }
        return b
    }
    func optionalObject(_ key: String) throws(ModelError) -> JSONKeys? {
        guard let value = present(key) else { return nil }
        guard let o = value as? [String: Any] else { throw wrong(key, "an object") }
        return JSONKeys(json: o, file: "\(file) (\(key))")
    }
}
