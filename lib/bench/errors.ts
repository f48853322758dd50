// BenchError is defined with untorn's other errors in ../errors; this module
// stays for the imports of ./engine and ../index, which may import from there.
export { BenchError } from '../errors';
