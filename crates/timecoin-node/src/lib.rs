//! TimeCoin node engine: composes the layers, config, RPC. Not built yet.
