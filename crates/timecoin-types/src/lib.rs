//! TimeCoin types (being written).
