/**
 * Test support now lives in @tufa/testing; these names stay for the tests that still import them
 * from here (update, proposal, trusted and verify tests).
 */
export { bytesOf, codeOf as errorCode, DAY, NOW, RepoSim, sign, testKey } from '@tufa/testing';
