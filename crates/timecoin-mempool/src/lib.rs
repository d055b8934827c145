//! TimeCoin mempool: validation, pool, eviction, UTXO locks. Not built yet (see the storage and mempool issue).
