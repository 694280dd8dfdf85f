use crate::api::CellView;
use crate::error::CoreError;

/// The real-data weight w_t of each iteration.
pub trait Schedule: Send + Sync + std::fmt::Debug {
    /// Weights w_0, …, w_T (length `cell.iterations + 1`), each in [0, 1]; w_0 = 1
    /// because t = 0 fits real data only.
    fn weights(&self, cell: &CellView<'_>) -> Result<Vec<f64>, CoreError>;
}
