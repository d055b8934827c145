//! TimeCoin storage: storage traits with in-memory and sled backends. Not built yet (see the storage and mempool issue).
