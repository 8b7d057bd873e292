/**
 * IP address management (pure), the folder's API: which addresses each virt has (assign.ts),
 * from the subnets' checks and pools (subnets.ts, pool.ts) and the address arithmetic
 * (numbers.ts); the `allocations` record written back into a file's text is record.ts.
 */
export {
  allocate, allocationField, analyzeAddresses, assignAddresses,
  type AssignedAddress, type IpamIssue, type IpamResult, type VirtAddressing,
} from './assign.js';
export { serverAddress } from './subnets.js';
export {
  linkLocalAddress, numToV4, parseRange4, parseSubnet4, parseSubnet6, slaacAddress, v4ToNum,
  type Range4, type Subnet4, type Subnet6,
} from './numbers.js';
