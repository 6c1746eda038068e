"""A Modbus server for Faultline's tests: pymodbus' own server (not ours), Modbus TCP on 127.0.0.1
or Modbus RTU on a serial line (a pty the test makes with socat).

Usage: modbus_server.py PORT | modbus_server.py --serial PATH. Unit 1 serves fixed values that the
tests decode:
  holding 0      = 235             (i16, tenths: 23.5)
  holding 1..2   = 0x4225 0x0000   (f32, big word order: 41.25)
  holding 3..4   = 0x0000 0x4225   (f32, little word order: 41.25)
  holding 5..6   = 0x0001 0x86A0   (u32: 100000)
  input 1        = 65486           (i16: -50, tenths: -5.0)
  input 2        = 412             (i16, tenths: 41.2)
  coil 0..2      = 1 0 1
Addresses past 40 are not served: reading them gets exception 2 (illegal data address).
"""
import sys

from pymodbus.datastore import (
    ModbusDeviceContext,
    ModbusSequentialDataBlock,
    ModbusServerContext,
)
from pymodbus import FramerType
from pymodbus.server import StartSerialServer, StartTcpServer

# pymodbus blocks are 1-based inside: protocol address 0 is index 1 of the block.
pad = [0] * 33
holding = ModbusSequentialDataBlock(1, [235, 0x4225, 0x0000, 0x0000, 0x4225, 0x0001, 0x86A0] + pad)
inputs = ModbusSequentialDataBlock(1, [0, 65486, 412] + pad)
coils = ModbusSequentialDataBlock(1, [1, 0, 1] + pad)
discrete = ModbusSequentialDataBlock(1, [0] * 40)
device = ModbusDeviceContext(hr=holding, ir=inputs, co=coils, di=discrete)
context = ModbusServerContext(devices={1: device}, single=False)
if sys.argv[1] == "--serial":
    print("serving RTU on", sys.argv[2], flush=True)
    StartSerialServer(context=context, framer=FramerType.RTU, port=sys.argv[2], baudrate=9600)
else:
    StartTcpServer(context=context, address=("127.0.0.1", int(sys.argv[1])))
