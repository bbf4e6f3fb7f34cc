package validate

// ABIFit is abiFit, for the tests of a board whose firmware implements an older ABI
// (every board of the catalogue implements the current one).
var ABIFit = abiFit
