// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.28;

/// Independent check of crates/task/testdata/vectors.json with solc's own `abi.encode`
/// (run by ../cross-check.sh; not part of the contracts build).

contract VectorsTest {
    address constant NODE = 0x70997970C51812dc3A010C7d01b50e0d17dc79C8;
    bytes32 constant SALT = 0x73b619db30a65bf7056f8655478d9c99b5b7ad3e756fa56b327483e7ce3a5111;

    function test_vectors() public pure {
        require(keccak256("verinfer test salt") == SALT, "salt");
        bytes32 invalidArgs = keccak256("verinfer.invalid-args.v1");
        require(invalidArgs == 0x45974798b0fd748fb52c0ba5c3c54e6709c946834659bc9925c90e6e70256791, "invalid args");

        uint32[] memory ids = new uint32[](6);
        ids[0] = 4595; ids[1] = 29892; ids[2] = 13328; ids[3] = 322; ids[4] = 7254; ids[5] = 29889;
        bytes32 d1 = keccak256(abi.encode("verinfer.text.v1", "Red, yellow and blue.", ids, uint8(0)));
        require(d1 == 0xcd09346a5a4ccd2f67d417058ca5d68a0b6115439df770e014ffeae5a10fd9cf, "text 1");
        uint32[] memory ids2 = new uint32[](4);
        ids2[0] = 9038; ids2[1] = 2501; ids2[2] = 263; ids2[3] = 931;
        require(keccak256(abi.encode("verinfer.text.v1", "Once upon a time", ids2, uint8(1))) == 0x6e5c43f1330326c20b9623b62c11f4d6dad6cbaccad6f732daa8de57857f0e20, "text 2");
        uint32[] memory ids3 = new uint32[](3);
        ids3[0] = 0; ids3[1] = 1; ids3[2] = 4294967295;
        require(keccak256(abi.encode("verinfer.text.v1", unicode"naïve café ☕", ids3, uint8(2))) == 0x05d93eeed7a34e8e2fca17561783ad1b08b59c7fab4cb6c0b42aa5f3ba9e1586, "text 3");

        uint64[] memory p = new uint64[](4);
        p[0] = 0xf0e1d2c3b4a59687; p[1] = 0x0123456789abcdef; p[2] = 0xffffffffffffffff; p[3] = 0;
        require(keccak256(abi.encode(uint256(1), NODE, p, SALT)) == 0x0c919046cd1abb6c89ab59b1e2b4523bdeaa9871b3f21721cebaa48d60ebc6ec, "image commitment");
        require(keccak256(abi.encode(uint256(42), NODE, d1, SALT)) == 0xabc38d88ac1d9f2a271161854001d92480c27be6b2f7afbb1306fc49007c19fb, "text commitment");
        require(keccak256(abi.encode(type(uint256).max - 1, NODE, invalidArgs, SALT)) == 0xff2eb03f2328e904e5d3a4b7c7c497a9d11d540d79f4daa239c26849202e6265, "invalid commitment");
    }
}
